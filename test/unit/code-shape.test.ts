import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('../..', import.meta.url));
const MAX_FUNCTION_LINES = 100;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Every function-like node in src/ with its length in lines. */
function functionLengths(): { where: string; lines: number }[] {
  const found: { where: string; lines: number }[] = [];
  for (const file of sourceFiles(join(root, 'src'))) {
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      if (ts.isFunctionLike(node) && 'body' in node && node.body) {
        const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
        const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
        found.push({ where: `${relative(root, file)}:${start + 1}`, lines: end - start + 1 });
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return found;
}

test(`no function in src/ is longer than ${MAX_FUNCTION_LINES} lines`, () => {
  const all = functionLengths();
  assert.ok(all.length > 100, 'the scan found the functions of src/');
  const long = all.filter((f) => f.lines > MAX_FUNCTION_LINES).map((f) => `${f.where} (${f.lines} lines)`);
  assert.deepEqual(long, []);
});
