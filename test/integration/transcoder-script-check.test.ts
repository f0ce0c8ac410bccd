import { after, test } from 'node:test';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertScriptsCheck, type CheckResult } from '../support/liquidsoap-check.js';

/** This machine's liquidsoap; test/package/trixie-daemons.test.ts checks Debian 13's. */
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

test('liquidsoap --check accepts the generated script for every codec', async () => {
  dir = await mkdtemp(join(tmpdir(), 'autoradio-liq-check-'));
  await assertScriptsCheck(check, dir);
});
