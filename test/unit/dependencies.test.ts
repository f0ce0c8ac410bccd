import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

test('every runtime dependency is imported by the programs (the .deb ships each one)', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const code = sources(join(ROOT, 'src')).map((f) => readFileSync(f, 'utf8')).join('\n');
  for (const name of Object.keys(pkg.dependencies)) {
    const imported = new RegExp(`from '${name}(/[^']*)?'`).test(code);
    assert.ok(imported, `${name} is a runtime dependency that nothing in src/ imports`);
  }
});
