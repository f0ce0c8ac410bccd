import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertScriptsCheck, type CheckResult } from '../support/liquidsoap-check.js';
import { PACKAGE_CACHE_DIR, builtPackages, packageRoot } from './debian-root.js';

/**
 * The transcoder script must run on Debian 13's liquidsoap (2.3.x) as well as on this machine's:
 * `liquidsoap --check` of every variant inside the cached Debian 13 root, whose dependency layer
 * already holds the liquidsoap the packages depend on.
 */

const repo = fileURLToPath(new URL('../../', import.meta.url));

test("Debian 13's liquidsoap accepts the generated transcoder script for every codec", { timeout: 30 * 60_000 }, async (t) => {
  assert.equal(process.getuid?.(), 0, 'this test needs root (debootstrap, chroot, mount)');
  const debDir = await builtPackages(repo, { cacheDir: PACKAGE_CACHE_DIR, log: (m) => t.diagnostic(m) });
  const root = await packageRoot(debDir, (m) => t.diagnostic(m));
  t.after(() => root.destroy());

  const version = await root.mustExec(['liquidsoap', '--version']);
  t.diagnostic(version.stdout.split('\n')[0] ?? '');
  assert.match(version.stdout, /^Liquidsoap 2\.3\./, 'Debian 13 ships liquidsoap 2.3');

  const dir = join(root.path, 'tmp/liq-check');
  await mkdir(dir, { recursive: true });
  // HOME=/tmp: liquidsoap 2.3 keeps its compiled standard library in ~/.cache, shared by the runs.
  const liquidsoap = (args: string[]) => async (file: string, env: Record<string, string>): Promise<CheckResult> => {
    const r = await root.exec(['liquidsoap', ...args, file], { env: { HOME: '/tmp', ...env }, timeoutMs: 180_000 });
    return { code: r.code, output: `${r.stdout}${r.stderr}` };
  };
  const { getenvAccepted } = await assertScriptsCheck(liquidsoap(['--check']), dir, {
    inside: (p) => p.slice(root.path.length),
    runWithoutVariable: liquidsoap([]),
  });
  // The form radiod used to generate: this test would have caught it.
  assert.equal(getenvAccepted, false, 'liquidsoap 2.3 rejects getenv(name)');
});
