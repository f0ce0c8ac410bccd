import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Malformed config files and flags through the packaged entry point: every failure is one
// stderr line with its code (or one JSON line), exit status 1, whatever is wrong. No etcd runs:
// nothing here may get as far as a connection, or it must say etcd is unreachable.

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../../bin/radioctl', import.meta.url));
let dir: string;

before(async () => {
  if (!existsSync(join(REPO, 'dist/radioctl/main.js'))) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: REPO, stdio: 'inherit' });
  dir = await mkdtemp(join(tmpdir(), 'radioctl-config-attack-'));
});
after(() => rm(dir, { recursive: true, force: true }));

function radioctl(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AUTORADIO_')));
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { env, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ status: err ? Number((err as { code?: unknown }).code) : 0, stdout, stderr });
    });
  });
}

const CASES: { name: string; file: string; code: string }[] = [
  { name: 'inline comment', file: 'AUTORADIO_ETCD_URLS="http://127.0.0.1:1" # main\n', code: 'AR_INVALID_CONFIG' },
  { name: 'CRLF, CA file missing', file: 'AUTORADIO_ETCD_URLS=https://127.0.0.1:1\r\nAUTORADIO_ETCD_CA=/nonexistent/ca.pem\r\n', code: 'AR_INVALID_CONFIG' },
  { name: 'certificate without key', file: 'AUTORADIO_ETCD_URLS=https://127.0.0.1:1\nAUTORADIO_ETCD_CA=/nonexistent/ca.pem\nAUTORADIO_ETCD_CERT=/nonexistent/c.pem\n', code: 'AR_INVALID_CONFIG' },
  { name: 'a path in the URL', file: 'AUTORADIO_ETCD_URLS=http://127.0.0.1:1/v3\n', code: 'AR_INVALID_CONFIG' },
  { name: 'plain etcd down', file: "AUTORADIO_ETCD_URLS='https://127.0.0.1:1'\n", code: 'AR_ETCD_UNAVAILABLE' },
];

test('malformed config files: one line, the right code, exit 1, with and without --json', async () => {
  for (const c of CASES) {
    const file = join(dir, c.name.replace(/\W+/g, '-'));
    await writeFile(file, c.file);
    for (const json of [false, true]) {
      const r = await radioctl([...(json ? ['--json'] : []), '--config', file, 'create-mount', '/x.mp3']);
      const what = `${c.name}${json ? ' --json' : ''}: ${r.stderr}`;
      assert.equal(r.status, 1, what);
      assert.equal(r.stdout, '', what);
      assert.equal(r.stderr.split('\n').length, 2, `one line: ${what}`);
      if (json) assert.equal((JSON.parse(r.stderr) as { error: { code: string } }).error.code, c.code, what);
      else assert.match(r.stderr, new RegExp(`^radioctl: .* \\[${c.code}\\]\\n$`), what);
    }
  }
  // The default file may be absent; a file named with --config may not.
  const missing = await radioctl(['--config', join(dir, 'missing'), 'list-mounts']);
  assert.match(missing.stderr, /^radioctl: cannot read the config file .*\[AR_INVALID_CONFIG\]\n$/);
});
