import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../support/wait.js';
import { freePort } from '../support/ports.js';
import { startProcess, type Managed } from '../support/processes.js';
import { MASTER_ELECTION_PREFIX, mountKey, nodeKey } from '../../src/coordination/keys.js';
import {
  RADIOD,
  ROOT,
  baseline,
  nodeStatus,
  radioctl,
  assertAlive,
  startStack,
  waitNearBaseline,
  type Baseline,
  type Stack,
} from './hardening-harness.js';

/**
 * Malformed values written straight into etcd under mount, node and election keys: every
 * daemon (redirectord, radiod when built) and radioctl must skip them with a log line or an
 * error message, keep serving the valid mounts, and never leak what the bad value held.
 */

let stack: Stack;
let base: Baseline;
let radiod: { proc: Managed; dir: string } | undefined;

const SECRET = 'leakme-9f3a1c';

// Key -> value; each must be refused on its own without touching anything else.
const BAD_MOUNTS: Record<string, string | Buffer> = {
  'bad-json.mp3': '{not json',
  'truncated.mp3': `{"path":"/truncated.mp3","username":"source","password":"${SECRET}"`,
  'wrong-types.mp3': '{"path":"/wrong-types.mp3","username":5,"password":[]}',
  'path-mismatch.mp3': JSON.stringify({ path: '/elsewhere.mp3', username: 'source', password: 'x' }),
  'dotdot': JSON.stringify({ path: '/../../etc/passwd', username: 'source', password: 'x' }),
  'relay-secret.mp3': JSON.stringify({ path: '/relay-secret.mp3', username: 'source', password: 'x', relayUrl: `ftp://up:${SECRET}@example.org/x` }),
  'huge.mp3': JSON.stringify({ path: '/huge.mp3', username: 'source', password: 'x', pad: 'p'.repeat(1_000_000) }),
  'binary.mp3': Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0x22, 0x80, 0x81]),
  'null.mp3': 'null',
  'array.mp3': '[1,2,3]',
  'deep.mp3': '['.repeat(100_000) + ']'.repeat(100_000),
};

before(async () => {
  stack = await startStack({ mountPaths: ['/a.mp3', '/b.mp3'] });
  base = baseline(stack.redirectord.pid);
  if (existsSync(RADIOD)) {
    const dir = await mkdtemp(join(tmpdir(), 'autoradio-radiod-'));
    const proc = startProcess(
      process.execPath,
      [
        RADIOD,
        '--etcd-urls', stack.etcd.url,
        '--domain', 'radio.test',
        '--name', 'r1',
        '--ip', '127.0.0.1',
        '--icecast-config', join(dir, 'icecast.xml'),
        '--icecast-port', String(await freePort()),
        '--icecast-bind', '127.0.0.1',
        '--icecast-logdir', join(dir, 'log'),
        '--icecast-pidfile', join(dir, 'icecast.pid'),
        '--metrics-listen', `127.0.0.1:${await freePort()}`,
        '--lease-ttl', '4',
      ],
      { cwd: ROOT },
    );
    radiod = { proc, dir };
  }
});

after(async () => {
  await radiod?.proc.stop('SIGTERM', 5000);
  if (radiod) await rm(radiod.dir, { recursive: true, force: true });
  await stack?.stop();
});

async function statusJson(): Promise<string> {
  return (await fetch(`http://127.0.0.1:${stack.redirectord.httpPort}/status.json`)).text();
}

async function radiodConfig(): Promise<string> {
  return radiod ? readFile(join(radiod.dir, 'icecast.xml'), 'utf8').catch(() => '') : '';
}

test('radiod (when built) renders the valid mounts before the bad values arrive', { skip: !existsSync(RADIOD) }, async () => {
  await waitFor('radiod config with /a.mp3 and /b.mp3', async () => {
    if (radiod!.proc.child.exitCode !== null) throw new Error(`radiod exited:\n${radiod!.proc.output.join('\n')}`);
    const xml = await radiodConfig();
    return xml.includes('/a.mp3') && xml.includes('/b.mp3');
  }, { timeoutMs: 15_000 });
});

test('malformed mount, node and election values are skipped with a log line; valid mounts stay', async () => {
  const before = await statusJson();
  assert.match(before, /\/a\.mp3/);
  // Overwrite a valid mount with garbage: its last valid version must stay in force.
  await stack.client.put(mountKey('/a.mp3')).value(`{"path":"/a.mp3","password":"${SECRET}"`);
  for (const [k, v] of Object.entries(BAD_MOUNTS)) await stack.client.put(mountKey(`/${k}`)).value(v);
  // Node statuses: garbage for a new node, garbage over the master's own status, a lying name.
  await stack.client.put(nodeKey('evil')).value('{"name":"evil","addresses":["not-an-ip"]}');
  await stack.client.put(nodeKey('n1')).value('{{{{');
  await stack.client.put(nodeKey('liar')).value(JSON.stringify(nodeStatus('n1', 1)));
  await stack.client.put(nodeKey('x'.repeat(3000))).value(SECRET);
  // A later master candidate with garbage must not displace the real master.
  await stack.client.put(`${MASTER_ELECTION_PREFIX}zzz-garbage`).value(`not json ${SECRET}`);
  // A valid mount written after all that still shows up.
  await radioctl([...stack.etcdArgs, 'create-mount', '/c.mp3']).then((r) => assert.equal(r.code, 0, r.stderr));

  const after = await waitFor('redirectord sees /c.mp3', async () => {
    const s = await statusJson();
    return s.includes('/c.mp3') ? s : undefined;
  });
  const status = JSON.parse(after) as Record<string, unknown>;
  const text = JSON.stringify(status);
  for (const p of ['/a.mp3', '/b.mp3', '/c.mp3']) assert.ok(text.includes(`"${p}"`), `${p} missing from status.json`);
  for (const k of Object.keys(BAD_MOUNTS)) assert.ok(!text.includes(`/${k}`), `bad mount /${k} is shown`);
  assert.ok(!text.includes('evil') && !text.includes('liar') && !text.includes(SECRET));
  assert.match(text, /"n1"/, 'the master node disappeared');

  // Still routing: a listener for /a.mp3 is redirected; the master still takes sources.
  const res = await fetch(`http://127.0.0.1:${stack.redirectord.httpPort}/a.mp3`, { redirect: 'manual' });
  assert.equal(res.status, 302);
  await res.text();

  // One warning per bad key, naming the key, never the value's secret.
  const warned = await waitFor('invalid values logged', () => {
    const lines = stack.redirectord.lines.filter((l) => l.includes('ignoring invalid value in etcd'));
    return lines.length >= Object.keys(BAD_MOUNTS).length + 3 ? lines : undefined;
  });
  for (const k of ['bad-json.mp3', 'truncated.mp3', 'path-mismatch.mp3', 'dotdot', 'huge.mp3', 'deep.mp3']) {
    assert.ok(warned.some((l) => l.includes(`mounts/${k}"`)), `no warning for ${k}`);
  }
  assert.ok(warned.some((l) => l.includes('nodes/evil')));
  for (const l of warned) {
    const event = JSON.parse(l) as { level: number };
    assert.equal(event.level, 40, 'invalid values are logged at warn level');
    assert.ok(l.length < 4000, `log line of ${l.length} chars`);
  }
  const leaks = stack.redirectord.lines.filter((l) => l.includes(SECRET));
  assert.deepEqual(leaks, [], 'a secret from a bad value reached the log');
  assertAlive(stack.redirectord);
});

test('radioctl lists, shows and reports around the bad values without crashing or leaking', async () => {
  const list = await radioctl([...stack.etcdArgs, 'list-mounts']);
  assert.equal(list.code, 0, list.stderr);
  for (const p of ['/b.mp3', '/c.mp3']) assert.match(list.stdout, new RegExp(p.replace('.', '\\.')));
  assert.match(list.stdout, /invalid value at \/autoradio\/v1\/mounts\/bad-json\.mp3/);
  assert.doesNotMatch(list.stdout + list.stderr, new RegExp(SECRET));

  const json = await radioctl([...stack.etcdArgs, '--json', 'list-mounts']);
  assert.equal(json.code, 0, json.stderr);
  const parsed = JSON.parse(json.stdout) as { mounts: unknown[]; invalid: { key: string }[] };
  // radioctl reads the store itself: /a.mp3 is damaged there (the daemons keep its last good version).
  assert.deepEqual(parsed.mounts.map((m) => (m as { path: string }).path).sort(), ['/b.mp3', '/c.mp3']);
  assert.ok(parsed.invalid.some((i) => i.key.endsWith('/mounts/a.mp3')));
  assert.ok(parsed.invalid.length >= Object.keys(BAD_MOUNTS).length);

  const show = await radioctl([...stack.etcdArgs, 'show-mount', '/bad-json.mp3']);
  assert.notEqual(show.code, 0);
  assert.equal(show.stderr.trim().split('\n').length, 1, `not a one-line error: ${show.stderr}`);
  assert.match(show.stderr, /^radioctl: /);

  const status = await radioctl([...stack.etcdArgs, 'status']);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /n1/);
  assert.doesNotMatch(status.stdout + status.stderr, new RegExp(SECRET));

  // Refused input leaves the store as it was; editing the damaged mount is refused clearly.
  const dup = await radioctl([...stack.etcdArgs, 'create-mount', '/bad-json.mp3']);
  assert.notEqual(dup.code, 0);
  assert.match(dup.stderr, /invalid|delete/i);
});

test('radiod (when built) keeps running and keeps the valid mounts in its config', { skip: !existsSync(RADIOD) }, async () => {
  const xml = await waitFor('radiod config with /c.mp3', async () => {
    if (radiod!.proc.child.exitCode !== null) throw new Error(`radiod exited:\n${radiod!.proc.output.join('\n')}`);
    const x = await radiodConfig();
    return x.includes('/c.mp3') ? x : undefined;
  }, { timeoutMs: 15_000 });
  assert.ok(xml.includes('/a.mp3') && xml.includes('/b.mp3'));
  for (const k of Object.keys(BAD_MOUNTS)) assert.ok(!xml.includes(`/${k}<`), `bad mount /${k} in icecast.xml`);
  assert.ok(!xml.includes(SECRET));
  assert.equal(radiod!.proc.child.exitCode, null);
  assert.deepEqual(radiod!.proc.output.filter((l) => l.includes(SECRET)), [], 'radiod logged a secret from a bad value');
});

test('redirectord: descriptors and memory back near baseline after the bad values', async () => {
  const now = await waitNearBaseline(stack.redirectord.pid, base);
  console.log(`# baseline ${JSON.stringify(base)}, after ${JSON.stringify(now)}`);
});
