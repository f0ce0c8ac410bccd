import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { connectEtcd, type Etcd3 } from '../../src/coordination/client.js';
import { ROOT, mountKey } from '../../src/coordination/keys.js';
import { parseStoredMount } from '../../src/coordination/mount.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';

// Two admins create the same mount at once, through the packaged binary: one is told the
// password that etcd holds, the other that the mount exists. Never both, never a password
// that is not the stored one.

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../../bin/radioctl', import.meta.url));
const ROUNDS = 5;
let etcd: TestEtcd;
let client: Etcd3;

before(async () => {
  if (!existsSync(join('dist/radioctl/main.js'))) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: REPO, stdio: 'inherit' });
  etcd = await startEtcd();
  client = connectEtcd({ etcdUrls: [etcd.url] });
});

after(async () => {
  client?.close();
  await etcd?.stop();
});

function join(path: string): string {
  return fileURLToPath(new URL(path, new URL('../../', import.meta.url)));
}

function create(path: string): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, '--etcd-urls', etcd.url, 'create-mount', path], { timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ status: err ? Number((err as { code?: unknown }).code) : 0, stdout, stderr }),
    );
  });
}

test(`two create-mount processes racing for one path, ${ROUNDS} rounds: one password, one "exists"`, async () => {
  await client.delete().prefix(ROOT);
  for (let round = 0; round < ROUNDS; round++) {
    const path = `/race-${round}.mp3`;
    const results = await Promise.all([create(path), create(path)]);
    const won = results.filter((r) => r.status === 0);
    const lost = results.filter((r) => r.status !== 0);
    assert.equal(won.length, 1, JSON.stringify(results));
    assert.equal(lost.length, 1, JSON.stringify(results));
    assert.match(lost[0]!.stderr, /^radioctl: mount .* already exists \[AR_MOUNT_EXISTS\]\n$/);
    assert.equal(lost[0]!.stdout, '');
    const printed = /source password: (\S+)/.exec(won[0]!.stdout)?.[1];
    const stored = parseStoredMount((await client.get(mountKey(path)).string())!);
    assert.equal(printed, stored.password, won[0]!.stdout);
  }
});
