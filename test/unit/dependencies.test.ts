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

/** The lowest Node major a semver range of `engines.node` admits (each `||` alternative's lower bound). */
function lowestNodeMajor(range: string): number {
  const majors = range.split('||').map((alt) => {
    const m = /(?:>=|\^|~|>|=)?\s*v?(\d+)/.exec(alt.trim());
    return m ? Number(m[1]) : 0;
  });
  return Math.min(...majors);
}

test('every installed package runs on Node 20 (Debian 13 ships 20.19)', () => {
  assert.equal(lowestNodeMajor('>=22'), 22);
  assert.equal(lowestNodeMajor('^18 || >=20'), 18);
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { engines?: { node?: string } | string[]; dev?: boolean }>;
  };
  const tooNew = Object.entries(lock.packages)
    .filter(([, p]) => p.engines && !Array.isArray(p.engines) && p.engines.node && lowestNodeMajor(p.engines.node) > 20)
    .map(([name, p]) => `${name} (${(p.engines as { node: string }).node})`);
  assert.deepEqual(tooNew, []);
});
