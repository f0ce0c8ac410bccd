import { after, test } from 'node:test';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertScriptsCheck, type CheckResult } from '../support/liquidsoap-check.js';

/**
 * This machine's liquidsoap (Debian 12's 2.1.3 here); test/package/liquidsoap-trixie.test.ts checks
 * Debian 13's 2.3, and test/package/systemd-boot.test.ts runs it as a transcoder.
 */
let dir: string | undefined;
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function check(file: string, env: Record<string, string>): Promise<CheckResult> {
  return new Promise((resolve) => {
    execFile('liquidsoap', ['--check', file], { timeout: 60_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

test('liquidsoap --check accepts the generated script for every codec', async (t) => {
  const version = await new Promise<string>((resolve) => execFile('liquidsoap', ['--version'], (_err, stdout) => resolve(stdout.split('\n')[0] ?? '')));
  t.diagnostic(version);
  dir = await mkdtemp(join(tmpdir(), 'autoradio-liq-check-'));
  await assertScriptsCheck(check, dir);
});
