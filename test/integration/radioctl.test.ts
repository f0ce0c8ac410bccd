import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GRPCDeadlineExceededError, GRPCUnavailableError } from 'etcd3';
import { fileURLToPath } from 'node:url';
import { connectEtcd, type Etcd3 } from '../../src/coordination/client.js';
import { MASTER_ELECTION_PREFIX, MOUNTS_PREFIX, ROOT, drainKey, forgottenKey, mountKey, nodeKey } from '../../src/coordination/keys.js';
import { MountStore, type TxnSender } from '../../src/coordination/mount-store.js';
import { parseStoredMount, type Mount } from '../../src/coordination/mount.js';
import type { NodeStatus } from '../../src/coordination/node-status.js';
import { AutoradioError, ErrorCode } from '../../src/common/errors.js';
import { run } from '../../src/radioctl/main.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const DIST_MAIN = fileURLToPath(new URL('../../dist/radioctl/main.js', import.meta.url));
/** The packaged entry point (what /usr/bin/radioctl runs), not dist/ directly. */
const MAIN = fileURLToPath(new URL('../../bin/radioctl', import.meta.url));

let etcd: TestEtcd;
let client: Etcd3;
let store: MountStore;

before(async () => {
  if (!existsSync(DIST_MAIN)) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: REPO, stdio: 'inherit' });
  etcd = await startEtcd();
  client = connectEtcd({ etcdUrls: [etcd.url] });
  store = new MountStore(client);
});

after(async () => {
  client?.close();
  await etcd?.stop();
});

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the compiled radioctl as a child process. */
function radioctl(args: string[], opts: { stdin?: string; etcdUrl?: string } = {}): Promise<Result> {
  return radioctlBare(['--etcd-urls', opts.etcdUrl ?? etcd.url, ...args], opts);
}

/** The same without the --etcd-urls flag: the config file and environment decide. */
function radioctlBare(args: string[], opts: { stdin?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AUTORADIO_'))),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
    child.stdin.end(opts.stdin ?? '');
  });
}

/** Runs radioctl in this process (same code, no process start) for the bulk cases. */
async function inproc(args: string[]): Promise<Result> {
  const started = Date.now();
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(['--etcd-urls', etcd.url, ...args], (s) => out.push(s), (s) => err.push(s));
  return { code, stdout: out.map((s) => `${s}\n`).join(''), stderr: err.map((s) => `${s}\n`).join(''), ms: Date.now() - started };
}

function ok(r: Result, what: string): string {
  assert.equal(r.code, 0, `${what}: exit ${r.code}, stderr: ${r.stderr}`);
  assert.equal(r.stderr, '', what);
  return r.stdout;
}

/** Refused: non-zero exit, exactly one stderr line prefixed "radioctl: ", nothing on stdout. */
function refused(r: Result, what: string, re?: RegExp): string {
  assert.notEqual(r.code, 0, `${what}: should fail, stdout: ${r.stdout}`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `${what}: one stderr line, got ${JSON.stringify(r.stderr)}`);
  assert.match(lines[0]!, /^radioctl: \S/, what);
  if (re) assert.match(lines[0]!, re, what);
  assert.equal(r.stdout, '', what);
  return lines[0]!;
}

async function snapshot(): Promise<Record<string, string>> {
  return client.getAll().prefix(ROOT).strings();
}

async function stored(path: string): Promise<Mount | undefined> {
  const raw = await client.get(mountKey(path)).string();
  return raw === null ? undefined : parseStoredMount(raw);
}

async function clear(): Promise<void> {
  await client.delete().prefix(ROOT);
}

function passwordFrom(stdout: string): string {
  const m = /^\s*source password: (\S+)$/m.exec(stdout);
  assert.ok(m, `no password in ${stdout}`);
  return m[1]!;
}

test('create, show, list, edit and delete through the real binary', async () => {
  await clear();
  const created = ok(await radioctl(['create-mount', '/live.mp3']), 'create');
  assert.match(created, /^mount: \/live.mp3$/m);
  assert.match(created, /^source username: source$/m);
  const password = passwordFrom(created);
  assert.match(password, /^[A-Za-z0-9_-]{16,}$/);
  assert.deepEqual(await stored('/live.mp3'), { path: '/live.mp3', username: 'source', password });

  ok(await inproc(['create-mount', '/backup.mp3']), 'create backup');
  const withRefs = ok(
    await radioctl(['create-mount', '/dir/show.ogg', '--fallback', '/backup.mp3', '--relay', 'http://example.com:8080/up.ogg']),
    'create with relay and fallback',
  );
  assert.deepEqual(await stored('/dir/show.ogg'), {
    path: '/dir/show.ogg',
    username: 'source',
    password: passwordFrom(withRefs),
    relayUrl: 'http://example.com:8080/up.ogg',
    fallback: '/backup.mp3',
  });

  const shown = ok(await radioctl(['show-mount', '/live.mp3']), 'show');
  assert.match(shown, /^\/live.mp3$/m);
  assert.equal(passwordFrom(shown), password);

  const list = ok(await radioctl(['list-mounts']), 'list');
  assert.deepEqual(list.trim().split('\n'), [
    '/backup.mp3\tsource',
    '/dir/show.ogg\trelay of http://example.com:8080/up.ogg, fallback /backup.mp3',
    '/live.mp3\tsource',
  ]);
  assert.equal(list.includes(password), false, 'list shows no password');

  // --json on every reading command parses, and list output carries no password.
  const listJson = JSON.parse(ok(await radioctl(['list-mounts', '--json']), 'list --json')) as {
    mounts: Record<string, unknown>[];
    invalid: unknown[];
  };
  assert.deepEqual(
    listJson.mounts.map((m) => m['path']),
    ['/backup.mp3', '/dir/show.ogg', '/live.mp3'],
  );
  assert.ok(listJson.mounts.every((m) => !('password' in m)));
  assert.deepEqual(listJson.invalid, []);
  assert.deepEqual(JSON.parse(ok(await radioctl(['--json', 'show-mount', '/live.mp3']), 'show --json')), {
    ...(await stored('/live.mp3')),
    onAir: false,
    listeners: 0,
  });

  // Edits: each flag changes exactly what it says.
  const relayed = ok(await radioctl(['edit-mount', '/live.mp3', '--relay', 'http://example.com/r.mp3', '--fallback', '/backup.mp3']), 'edit');
  assert.match(relayed, /relay from: http:\/\/example.com\/r.mp3/);
  assert.equal(relayed.includes(password), false, 'edit without --reset-password prints no password');
  assert.deepEqual(await stored('/live.mp3'), {
    path: '/live.mp3',
    username: 'source',
    password,
    relayUrl: 'http://example.com/r.mp3',
    fallback: '/backup.mp3',
  });
  ok(await inproc(['edit-mount', '/live.mp3', '--no-relay']), 'no-relay');
  assert.deepEqual(await stored('/live.mp3'), { path: '/live.mp3', username: 'source', password, fallback: '/backup.mp3' });
  ok(await inproc(['edit-mount', '/live.mp3', '--no-fallback']), 'no-fallback');
  assert.deepEqual(await stored('/live.mp3'), { path: '/live.mp3', username: 'source', password });

  const reset = ok(await radioctl(['edit-mount', '/live.mp3', '--reset-password']), 'reset');
  const newPassword = passwordFrom(reset);
  assert.notEqual(newPassword, password);
  assert.deepEqual(await stored('/live.mp3'), { path: '/live.mp3', username: 'source', password: newPassword });
  const resetJson = JSON.parse(ok(await inproc(['edit-mount', '/live.mp3', '--reset-password', '--json']), 'reset json')) as Mount;
  assert.notEqual(resetJson.password, newPassword);
  assert.deepEqual(await stored('/live.mp3'), resetJson);

  const deleted = ok(await radioctl(['delete-mount', '/dir/show.ogg']), 'delete');
  assert.match(deleted, /deleted \/dir\/show.ogg/);
  assert.equal(await stored('/dir/show.ogg'), undefined);
  assert.deepEqual(JSON.parse(ok(await inproc(['delete-mount', '/backup.mp3', '--json']), 'delete json')), { deleted: '/backup.mp3' });
  assert.equal(await stored('/backup.mp3'), undefined);
});

test('create-transcoding-mount with defaults and with explicit parameters', async () => {
  await clear();
  ok(await inproc(['create-mount', '/src.mp3']), 'source');
  const created = ok(
    await radioctl(['create-transcoding-mount', '/low.mp3', '--source', '/src.mp3', '--codec', 'mp3', '--bitrate', '64']),
    'defaults',
  );
  assert.deepEqual(await stored('/low.mp3'), {
    path: '/low.mp3',
    username: 'source',
    password: passwordFrom(created),
    transcoding: { source: '/src.mp3', codec: 'mp3', bitrate: 64, samplerate: 44100, channels: 2 },
  });
  const opus = JSON.parse(
    ok(
      await inproc(['create-transcoding-mount', '/low.opus', '--source', '/src.mp3', '--codec', 'opus', '--bitrate', '32', '--json']),
      'opus defaults',
    ),
  ) as Mount;
  assert.equal(opus.transcoding?.samplerate, 48000);
  const explicit = JSON.parse(
    ok(
      await inproc([
        '--json',
        'create-transcoding-mount',
        '/low.ogg',
        '--source',
        '/low.mp3', // a chain: transcoding a transcoded mount is allowed
        '--codec',
        'vorbis',
        '--bitrate',
        '48',
        '--samplerate',
        '22050',
        '--channels',
        '1',
        '--quality',
        '0.2',
        '--fallback',
        '/src.mp3',
      ]),
      'explicit',
    ),
  ) as Mount;
  assert.deepEqual(await stored('/low.ogg'), explicit);
  assert.deepEqual(explicit.transcoding, { source: '/low.mp3', codec: 'vorbis', bitrate: 48, samplerate: 22050, channels: 1, quality: 0.2 });
  assert.equal(explicit.fallback, '/src.mp3');

  // Vorbis' quality 0.2 kept for mp3 would be a quality liquidsoap's %mp3 refuses.
  refused(await inproc(['edit-mount', '/low.ogg', '--bitrate', '96', '--codec', 'mp3']), 'edit codec only', /quality 0\.2 must be an integer for mp3/);
  ok(await inproc(['edit-mount', '/low.ogg', '--bitrate', '96', '--codec', 'mp3', '--quality', '2']), 'edit transcoding');
  assert.deepEqual((await stored('/low.ogg'))!.transcoding, {
    source: '/low.mp3',
    codec: 'mp3',
    bitrate: 96,
    samplerate: 44100,
    channels: 1,
    quality: 2,
  });
  const describe = ok(await inproc(['list-mounts']), 'list');
  assert.match(describe, /^\/low.ogg\ttranscoded from \/low.mp3, fallback \/src.mp3$/m);
});

test('status shows nodes, the master and listeners per mount, as text and JSON', async () => {
  await clear();
  const live = await store.create({ path: '/live.mp3', username: 'source', password: 'live-secret-password' });
  const node = (name: string, listeners: number): NodeStatus => ({
    name,
    addresses: ['127.0.0.1'],
    icecastPort: 18000,
    icecastOk: true,
    mounts: { '/live.mp3': listeners },
    listeners,
    bandwidthKbps: listeners * 128,
    maxListeners: 100,
    maxBandwidthKbps: 0,
    reportedAt: Date.now(),
  });
  await client.put(nodeKey('node-a')).value(JSON.stringify(node('node-a', 3)));
  await client.put(nodeKey('node-b')).value(JSON.stringify(node('node-b', 4)));
  await client.put(`${MASTER_ELECTION_PREFIX}1234`).value(JSON.stringify({ name: 'node-b', addresses: ['127.0.0.1'], icecastPort: 18000 }));

  const text = ok(await radioctl(['status']), 'status');
  assert.match(text, /^master: node-b$/m);
  assert.match(text, /^node-a\s+127\.0\.0\.1\s+ok\s+3\/100\s+384 kbit\/s\s+relay\s+unknown$/m);
  assert.match(text, /^node-b\s+127\.0\.0\.1\s+ok\s+4\/100\s+512 kbit\/s\s+master\s+unknown$/m);
  assert.match(text, /^\/live\.mp3\s+7\s+node-a=3 node-b=4\s+off air$/m);
  assert.match(text, /^total: 2 nodes \(2 healthy\), 7 listeners of 200, 896 kbit\/s$/m);
  assert.equal(text.includes(live.password), false);

  const json = ok(await inproc(['status', '--json']), 'status --json');
  assert.equal(json.includes(live.password), false);
  const summary = JSON.parse(json) as { master: string; connected: boolean; mounts: { path: string; listeners: number }[] };
  assert.equal(summary.master, 'node-b');
  assert.equal(summary.connected, true);
  assert.deepEqual(summary.mounts.map((m) => [m.path, m.listeners]), [['/live.mp3', 7]]);
});

test('drain, undrain and forget-node through the real binary', async () => {
  await clear();
  const lease = client.lease(30);
  const present: NodeStatus = {
    name: 'node-c', addresses: ['127.0.0.1'], icecastPort: 18000, icecastOk: true, mounts: {}, listeners: 0,
    bandwidthKbps: 0, maxListeners: 0, maxBandwidthKbps: 0, reportedAt: Date.now(),
  };
  await lease.put(nodeKey('node-c')).value(JSON.stringify(present));
  try {
    const alone = ok(await radioctl(['drain', 'node-c']), 'drain');
    assert.match(alone, /node-c drained/);
    assert.match(alone, /no other live node can take over, so it keeps the master role/);
    assert.notEqual(await client.get(drainKey('node-c')).string(), null);
    const aloneJson = JSON.parse(ok(await radioctl(['--json', 'drain', 'node-c']), 'drain --json')) as Record<string, unknown>;
    assert.equal(aloneJson.handsOver, false);
    assert.equal(aloneJson.keepsRolesBecause, 'no-other-node');
    // With a healthy peer the roles move, and the peer is named.
    await lease.put(nodeKey('node-d')).value(JSON.stringify({ ...present, name: 'node-d' }));
    assert.match(ok(await radioctl(['drain', 'node-c']), 'drain with a peer'), /master role and transcoders move to node-d/);
    const withPeer = JSON.parse(ok(await radioctl(['--json', 'drain', 'node-c']), 'drain --json with a peer')) as Record<string, unknown>;
    assert.equal(withPeer.handsOver, true);
    assert.deepEqual(withPeer.successors, ['node-d']);
    await client.delete().key(nodeKey('node-d')).exec();
    const status = JSON.parse(ok(await radioctl(['--json', 'status']), 'status')) as { nodes: { name: string; draining?: boolean }[] };
    assert.equal(status.nodes.find((n) => n.name === 'node-c')?.draining, true);
    assert.match(ok(await radioctl(['status']), 'status'), /^node-c\s.*relay,draining/m);

    const refused = await radioctl(['--json', 'forget-node', 'node-c']);
    assert.equal(refused.code, 1);
    assert.equal((JSON.parse(refused.stderr) as { error: { code: string } }).error.code, 'AR_NODE_ALIVE');
    assert.notEqual(await client.get(nodeKey('node-c')).string(), null, 'a refused forget-node wrote nothing');
    assert.notEqual(await client.get(drainKey('node-c')).string(), null);

    assert.match(ok(await radioctl(['undrain', 'node-c']), 'undrain'), /node-c undrained/);
    assert.equal(await client.get(drainKey('node-c')).string(), null);
    assert.match(ok(await radioctl(['undrain', 'node-c']), 'undrain twice'), /node-c was not drained/);

    ok(await radioctl(['drain', 'node-c']), 'drain again');
    assert.match(ok(await radioctl(['forget-node', 'node-c', '--force']), 'forget --force'), /lease was revoked/);
    assert.equal(await client.get(nodeKey('node-c')).string(), null, 'status gone with the revoked lease');
    assert.equal(await client.get(drainKey('node-c')).string(), null, 'drain key gone');
    assert.notEqual(await client.get(forgottenKey('node-c')).string(), null, 'forgotten marker written');
    // A radiod whose status expired but whose election lease is kept alive still runs.
    await client.put(`${MASTER_ELECTION_PREFIX}feed`).value(JSON.stringify({ name: 'node-e', addresses: ['127.0.0.1'], icecastPort: 18000 }));
    const candidate = await radioctl(['--json', 'forget-node', 'node-e']);
    assert.equal((JSON.parse(candidate.stderr) as { error: { code: string } }).error.code, 'AR_NODE_ALIVE', 'a candidate is present');
    assert.equal(await client.get(forgottenKey('node-e')).string(), null, 'nothing written for a refused forget');
    await client.delete().key(`${MASTER_ELECTION_PREFIX}feed`).exec();
    const bad = await radioctl(['--json', 'drain', 'no/such']);
    assert.equal((JSON.parse(bad.stderr) as { error: { code: string } }).error.code, 'AR_INVALID_NODE_NAME');
  } finally {
    await lease.revoke().catch(() => undefined);
  }
});

test('backup, delete everything, restore: identical etcd contents', async () => {
  await clear();
  ok(await inproc(['create-mount', '/a.mp3']), 'a');
  ok(await inproc(['create-mount', '/b/c.mp3', '--fallback', '/a.mp3']), 'b');
  ok(await inproc(['create-mount', '/relay.mp3', '--relay', 'http://u:p@example.com/x?y=1']), 'relay');
  ok(await inproc(['create-transcoding-mount', '/a-low.ogg', '--source', '/a.mp3', '--codec', 'vorbis', '--bitrate', '64', '--quality', '0.1']), 't');
  const before = await snapshot();
  assert.equal(Object.keys(before).length, 4);

  const file = ok(await radioctl(['backup']), 'backup');
  const parsed = JSON.parse(file) as { version: number; mounts: Mount[] };
  assert.equal(parsed.version, 1);
  assert.deepEqual(parsed.mounts.map((m) => m.path), ['/a-low.ogg', '/a.mp3', '/b/c.mp3', '/relay.mp3']);

  // Restoring an empty backup deletes every mount.
  const emptied = ok(await radioctl(['restore'], { stdin: '{"version":1,"mounts":[]}' }), 'restore empty');
  assert.match(emptied, /restored 0 mounts, removed 4/);
  assert.deepEqual(await snapshot(), {});

  const restored = ok(await radioctl(['restore'], { stdin: file }), 'restore');
  assert.match(restored, /restored 4 mounts, removed 0/);
  assert.deepEqual(await snapshot(), before);

  // Restoring over a changed configuration brings it back, and removes a broken value too.
  ok(await inproc(['edit-mount', '/a.mp3', '--reset-password']), 'edit');
  ok(await inproc(['create-mount', '/extra.mp3']), 'extra');
  await client.put(mountKey('/broken.mp3')).value('{not json');
  const again = JSON.parse(ok(await radioctl(['restore', '--json'], { stdin: file }), 'restore json')) as { written: number; deleted: number };
  assert.deepEqual(again, { written: 4, deleted: 2 });
  assert.deepEqual(await snapshot(), before);
});

test('invalid input is refused with one stderr line and leaves etcd untouched', async () => {
  await clear();
  ok(await inproc(['create-mount', '/a.mp3']), 'a');
  ok(await inproc(['create-mount', '/b.mp3', '--fallback', '/a.mp3']), 'b');
  ok(await inproc(['create-mount', '/c.mp3', '--fallback', '/b.mp3']), 'c');
  ok(await inproc(['create-transcoding-mount', '/a-low.mp3', '--source', '/a.mp3', '--codec', 'mp3', '--bitrate', '64']), 't');
  ok(await inproc(['create-transcoding-mount', '/a-lower.mp3', '--source', '/a-low.mp3', '--codec', 'mp3', '--bitrate', '32']), 't2');
  const before = await snapshot();

  const cases: [string[], RegExp][] = [
    [['create-mount', 'no-slash.mp3'], /must start with "\/"/],
    [['create-mount', '/a b.mp3'], /characters of/],
    [['create-mount', '/'], /1-200 characters/],
    [['create-mount', `/${'x'.repeat(201)}`], /1-200 characters/],
    [['create-mount', '/a/../b.mp3'], /"\.\."/],
    [['create-mount', '//a.mp3'], /"\/\/"/],
    [['create-mount', '/dir/'], /end with "\/"/],
    [['create-mount', '/_stream/x.mp3'], /reserved/],
    [['create-mount', '/a%2Fb.mp3'], /characters of/],
    [['create-mount', '/radió.mp3'], /characters of/],
    [['create-mount', '/a\u0000b.mp3'], /characters of/],
    [['create-mount', '/a.mp3'], /already exists/],
    [['create-mount', '/new.mp3', '--fallback', '/missing.mp3'], /fallback mount \/missing.mp3 does not exist/],
    [['create-mount', '/new.mp3', '--fallback', '/new.mp3'], /its own fallback/],
    [['create-mount', '/new.mp3', '--relay', 'https://example.com/x'], /http:\/\//],
    [['create-mount', '/new.mp3', '--relay', 'http://example.com/a&b'], /percent-encoded/],
    [['create-mount', '/new.mp3', '--relay', 'not a url'], /not a valid URL/],
    [['create-transcoding-mount', '/t.mp3', '--source', '/missing.mp3', '--codec', 'mp3', '--bitrate', '64'], /transcoding source \/missing.mp3 does not exist/],
    [['create-transcoding-mount', '/t.mp3', '--source', '/a.mp3', '--codec', 'flac', '--bitrate', '64'], /Allowed choices/],
    [['create-transcoding-mount', '/t.mp3', '--source', '/a.mp3', '--codec', 'mp3', '--bitrate', '999'], /bitrate 999 is out of range/],
    [['create-transcoding-mount', '/t.mp3', '--source', '/a.mp3', '--codec', 'mp3', '--bitrate', '64', '--samplerate', '12345'], /samplerate 12345/],
    [['create-transcoding-mount', '/t.mp3', '--source', '/a.mp3', '--codec', 'aac', '--bitrate', '64', '--quality', '1'], /takes no quality/],
    // The transcoder (liquidsoap's %mp3 internal_quality) takes whole numbers only.
    [['create-transcoding-mount', '/t.mp3', '--source', '/a.mp3', '--codec', 'mp3', '--bitrate', '64', '--quality', '2.5'], /quality 2\.5 must be an integer for mp3/],
    [['create-transcoding-mount', '/t.mp3', '--source', '/t.mp3', '--codec', 'mp3', '--bitrate', '64'], /transcode itself/],
    [['create-transcoding-mount', '/a.mp3', '--source', '/b.mp3', '--codec', 'mp3', '--bitrate', '64'], /already exists/],
    [['edit-mount', '/a.mp3', '--fallback', '/c.mp3'], /would form a loop/],
    [['edit-mount', '/a.mp3', '--fallback', '/missing.mp3'], /does not exist/],
    [['edit-mount', '/a-low.mp3', '--source', '/a-lower.mp3'], /would form a loop/],
    [['edit-mount', '/a-low.mp3', '--source', '/a-low.mp3'], /transcode itself/],
    [['edit-mount', '/a-low.mp3', '--relay', 'http://example.com/x'], /both a relay and a transcoding/],
    [['edit-mount', '/a.mp3', '--bitrate', '64'], /not a transcoding mount/],
    [['edit-mount', '/missing.mp3', '--reset-password'], /mount \/missing.mp3 does not exist/],
    [['edit-mount', '/bad path', '--reset-password'], /characters of/],
    [['delete-mount', '/a.mp3'], /used by \/a-low.mp3, \/b.mp3/],
    [['delete-mount', '/a-low.mp3'], /used by \/a-lower.mp3/],
    [['delete-mount', '/missing.mp3'], /does not exist/],
    [['show-mount', '/missing.mp3'], /does not exist/],
  ];
  for (const [args, re] of cases) refused(await inproc(args), args.join(' '), re);
  assert.deepEqual(await snapshot(), before);

  // The same through the real binary, for a few of them (exit codes and stderr of the process).
  const bad = await radioctl(['create-mount', '/_reserved.mp3']);
  assert.equal(bad.code, 1);
  refused(bad, 'binary bad path', /reserved/);
  const codec = await radioctl(['create-transcoding-mount', '/t.mp3', '--source', '/a.mp3', '--codec', 'wav', '--bitrate', '64']);
  assert.equal(codec.code, 2);
  refused(codec, 'binary codec', /Allowed choices are mp3, vorbis, opus, aac/);
  refused(await radioctl(['create-mount', '/b.mp3']), 'binary duplicate', /mount \/b.mp3 already exists/);
  refused(await radioctl(['delete-mount', '/b.mp3']), 'binary in use', /used by \/c.mp3/);
  refused(await radioctl(['edit-mount', '/nope.mp3', '--no-relay']), 'binary missing', /does not exist/);
  assert.deepEqual(await snapshot(), before);

  // Invalid backups: nothing is written, not even the good mounts before a bad one.
  const good = (path: string, extra: Partial<Mount> = {}): Mount => ({ path, username: 'source', password: 'good-password-1', ...extra });
  const backups: [string, RegExp][] = [
    ['{"version":1,"mounts":[', /not JSON/],
    ['', /not JSON/],
    [JSON.stringify({ version: 2, mounts: [] }), /unsupported version 2/],
    [JSON.stringify({ version: 1, mounts: [], more: true }), /unknown fields more/],
    [JSON.stringify({ version: 1, mounts: [good('/x1.mp3'), good('/_bad.mp3'), good('/x2.mp3')] }), /mount #2: .*reserved/],
    [JSON.stringify({ version: 1, mounts: [good('/x1.mp3'), { ...good('/x2.mp3'), password: 'short' }, good('/x3.mp3')] }), /mount #2/],
    [JSON.stringify({ version: 1, mounts: [good('/x1.mp3'), good('/x1.mp3')] }), /appears twice/],
    [JSON.stringify({ version: 1, mounts: [good('/x1.mp3', { fallback: '/zz.mp3' })] }), /does not exist/],
    [JSON.stringify({ version: 1, mounts: [good('/x1.mp3', { fallback: '/x2.mp3' }), good('/x2.mp3', { fallback: '/x1.mp3' })] }), /loop/],
  ];
  for (const [stdin, re] of backups) {
    const r = await radioctl(['restore'], { stdin });
    assert.equal(r.code, 1, stdin);
    const line = refused(r, `restore ${stdin.slice(0, 40)}`, re);
    assert.match(line, /nothing was written/);
  }
  assert.deepEqual(await snapshot(), before);
});

test('concurrent edit-mount processes lose no change', async () => {
  await clear();
  const others = Array.from({ length: 7 }, (_, i) => `/par/m${i}.mp3`);
  for (const p of ['/shared.mp3', '/fb.mp3', ...others]) await store.create({ path: p, username: 'source', password: 'initial-password' });

  // Seven processes on seven mounts and three on one mount, each changing a different field.
  const runs = await Promise.all([
    ...others.map((p) => radioctl(['edit-mount', p, '--reset-password'])),
    radioctl(['edit-mount', '/shared.mp3', '--reset-password']),
    radioctl(['edit-mount', '/shared.mp3', '--fallback', '/fb.mp3']),
    radioctl(['edit-mount', '/shared.mp3', '--relay', 'http://example.com/shared']),
  ]);
  for (const [i, r] of runs.entries()) ok(r, `parallel edit ${i}`);
  for (const [i, p] of others.entries()) {
    assert.equal((await stored(p))!.password, passwordFrom(runs[i]!.stdout), p);
  }
  assert.deepEqual(await stored('/shared.mp3'), {
    path: '/shared.mp3',
    username: 'source',
    password: passwordFrom(runs[7]!.stdout),
    fallback: '/fb.mp3',
    relayUrl: 'http://example.com/shared',
  });
});

test('MountStore.edit: concurrent read-modify-writes are each applied exactly once', async () => {
  await clear();
  await store.create({ path: '/counter.mp3', username: 'source', password: 'initial-password', relayUrl: 'http://example.com/0' });
  const counter = (m: Mount) => Number(/\/(\d+)$/.exec(m.relayUrl!)![1]);
  let calls = 0;
  let conflicts = 0;
  const increment = async (): Promise<number> => {
    for (;;) {
      try {
        const m = await store.edit('/counter.mp3', (cur) => {
          calls++;
          return { ...cur, relayUrl: `http://example.com/${counter(cur) + 1}` };
        });
        return counter(m);
      } catch (err) {
        // The store gives up after a few conflicting rounds, saying nothing was written; try again.
        if (!(err instanceof AutoradioError) || err.code !== ErrorCode.concurrentEdit) throw err;
        conflicts++;
      }
    }
  };
  const results = await Promise.all(Array.from({ length: 20 }, increment));
  // Every successful edit saw a distinct predecessor: the values 1..20, each once.
  assert.deepEqual([...results].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1));
  assert.equal(counter((await stored('/counter.mp3'))!), 20);
  // The edits really overlapped: some change functions ran on a value that was then replaced.
  assert.ok(calls > 20, `change called ${calls} times (${conflicts} give-ups)`);
});

test('etcd unreachable: exit 1 and a clear message within a few seconds', async () => {
  const [list, create] = await Promise.all([
    radioctl(['list-mounts'], { etcdUrl: 'http://127.0.0.1:1' }),
    radioctl(['create-mount', '/x.mp3'], { etcdUrl: 'http://127.0.0.1:1' }),
  ]);
  for (const r of [list, create]) {
    assert.equal(r.code, 1);
    refused(r, 'unreachable', /etcd is unreachable at http:\/\/127\.0\.0\.1:1 \(connection refused\); nothing was changed/);
    assert.ok(r.ms < 8000, `took ${r.ms} ms`);
  }
});

test('a malformed value under a mount key is reported; other mounts keep working', async () => {
  await clear();
  await store.create({ path: '/good.mp3', username: 'source', password: 'good-password' });
  await client.put(mountKey('/broken.mp3')).value('{"path": "/broken.mp3", ');
  await client.put(mountKey('/mismatch.mp3')).value(JSON.stringify({ path: '/other.mp3', username: 'source', password: 'xxxxxxxxxx' }));

  const list = ok(await radioctl(['list-mounts']), 'list');
  assert.match(list, /^\/good.mp3\tsource$/m);
  assert.match(list, new RegExp(`^invalid value at ${mountKey('/broken.mp3')}: stored mount is not valid JSON`, 'm'));
  assert.match(list, new RegExp(`^invalid value at ${mountKey('/mismatch.mp3')}: .*does not match the key`, 'm'));
  const json = JSON.parse(ok(await inproc(['list-mounts', '--json']), 'list json')) as {
    mounts: { path: string }[];
    invalid: { key: string; problem: string }[];
  };
  assert.deepEqual(json.mounts.map((m) => m.path), ['/good.mp3']);
  assert.deepEqual(json.invalid.map((i) => i.key).sort(), [mountKey('/broken.mp3'), mountKey('/mismatch.mp3')]);

  ok(await radioctl(['create-mount', '/new.mp3', '--fallback', '/good.mp3']), 'create next to a broken value');
  ok(await inproc(['edit-mount', '/good.mp3', '--reset-password']), 'edit next to a broken value');
  ok(await inproc(['delete-mount', '/new.mp3']), 'delete next to a broken value');
  ok(await inproc(['status']), 'status next to a broken value');
  refused(await inproc(['show-mount', '/broken.mp3']), 'show broken', /not valid JSON/);
  refused(await inproc(['create-mount', '/broken.mp3']), 'create over broken');
  assert.equal(await client.get(mountKey('/broken.mp3')).string(), '{"path": "/broken.mp3", ');
  assert.deepEqual(Object.keys(await client.getAll().prefix(MOUNTS_PREFIX).strings()).sort(), [
    mountKey('/broken.mp3'),
    mountKey('/good.mp3'),
    mountKey('/mismatch.mp3'),
  ]);
});

test('the packaged radioctl prints exactly one line on an error with an https etcd URL', async (t) => {
  // A TCP server that accepts and hangs up: gRPC starts TLS to an IP address, which makes Node
  // print its two-line DEP0123 warning unless the entry point silences it.
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const text = await radioctl(['list-mounts'], { etcdUrl: url });
  assert.equal(text.code, 1);
  refused(text, 'https', /etcd is unreachable at https:.* \[AR_ETCD_UNAVAILABLE\]$/);
  const json = await radioctl(['--json', 'list-mounts'], { etcdUrl: url });
  assert.equal(json.code, 1);
  assert.equal(json.stderr.split('\n').filter((l) => l !== '').length, 1, json.stderr);
  const parsed = JSON.parse(json.stderr) as { error: { code: string; message: string } };
  assert.equal(parsed.error.code, ErrorCode.etcdUnavailable);
  assert.match(parsed.error.message, /^etcd is unreachable at https:/);
});

test('errors carry their stable code on stderr and in --json', async () => {
  await clear();
  ok(await inproc(['create-mount', '/taken.mp3']), 'create');
  refused(await radioctl(['create-mount', '/taken.mp3']), 'duplicate', /already exists \[AR_MOUNT_EXISTS\]$/);
  refused(await inproc(['show-mount', '/nope.mp3']), 'missing', /\[AR_MOUNT_NOT_FOUND\]$/);
  refused(await inproc(['create-mount', '/_x.mp3']), 'bad path', /\[AR_INVALID_MOUNT_PATH\]$/);
  const usage = await radioctl(['--json', 'create-mount']);
  assert.equal(usage.code, 2);
  assert.deepEqual(JSON.parse(usage.stderr), { error: { code: 'AR_USAGE', message: "missing required argument 'path'" } });
  const dup = await radioctl(['create-mount', '/taken.mp3', '--json']);
  assert.equal(dup.code, 1);
  assert.equal(dup.stdout, '');
  assert.deepEqual(JSON.parse(dup.stderr), { error: { code: 'AR_MOUNT_EXISTS', message: 'mount /taken.mp3 already exists' } });
});

test('--config reads the etcd URLs; a flag or the environment wins; --version prints the package version', async (t) => {
  await clear();
  const dir = await mkdtemp(join(tmpdir(), 'radioctl-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const config = join(dir, 'autoradio');
  await writeFile(config, `# comment\nDOMAIN=radio.test\nAUTORADIO_ETCD_URLS="${etcd.url}"\n`);
  ok(await radioctlBare(['--config', config, 'create-mount', '/from-config.mp3']), 'config');
  assert.ok(await stored('/from-config.mp3'));
  const env = { ...process.env, AUTORADIO_ETCD_URLS: 'http://127.0.0.1:1' };
  refused(await radioctlBare(['--config', config, 'list-mounts'], { env }), 'environment wins', /127\.0\.0\.1:1 .*\[AR_ETCD_UNAVAILABLE\]/);
  refused(await radioctlBare(['--config', config, '--etcd-urls', 'http://127.0.0.1:1', 'list-mounts']), 'flag wins', /127\.0\.0\.1:1 /);
  refused(await radioctlBare(['--config', join(dir, 'missing'), 'list-mounts']), 'missing file', /cannot read the config file .*\[AR_INVALID_CONFIG\]$/);
  const version = await radioctlBare(['--version']);
  const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string };
  assert.equal(ok(version, 'version').trim(), pkg.version);
});

/** Sends each transaction to etcd for real, then reports it as timed out: the answer is lost. */
function losingAnswers(times: number): { send: TxnSender; sent: () => number } {
  let sent = 0;
  return {
    sent: () => sent,
    send: async (request) => {
      const res = await client.kv.txn(request);
      if (sent++ < times) throw new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded');
      return res;
    },
  };
}

test('a create whose answer was lost recognises its own write and returns its password', async () => {
  await clear();
  const lost = losingAnswers(1);
  const mount: Mount = { path: '/ambiguous.mp3', username: 'source', password: 'generated-password-1' };
  assert.deepEqual(await new MountStore(client, lost.send).create(mount), mount);
  assert.deepEqual(await stored('/ambiguous.mp3'), mount);
  assert.equal(lost.sent(), 1, 'the write is not sent again once it is seen');
  // The etcd client also resends a timed-out call by itself: the second copy loses its guard.
  const twice: TxnSender = async (request) => {
    await client.kv.txn(request);
    return client.kv.txn(request);
  };
  const again: Mount = { path: '/resent.mp3', username: 'source', password: 'generated-password-2' };
  assert.deepEqual(await new MountStore(client, twice).create(again), again);
  // Someone else's mount at the path is still refused.
  await assert.rejects(new MountStore(client, twice).create({ ...again, password: 'other-password-3' }), { code: ErrorCode.mountExists });
});

test('a delete whose answer was lost succeeds; a write that cannot be checked says so', async () => {
  await clear();
  await store.create({ path: '/gone.mp3', username: 'source', password: 'generated-password-1' });
  await new MountStore(client, losingAnswers(1).send).delete('/gone.mp3');
  assert.equal(await stored('/gone.mp3'), undefined);

  // The answer is lost and etcd cannot be read afterwards: not "nothing was changed".
  const cut = connectEtcd({ etcdUrls: [etcd.url] });
  const send: TxnSender = async (request) => {
    await cut.kv.txn(request);
    cut.close();
    throw new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded');
  };
  await assert.rejects(new MountStore(cut, send).create({ path: '/maybe.mp3', username: 'source', password: 'generated-password-2' }), (err) => {
    assert.ok(err instanceof AutoradioError);
    assert.equal(err.code, ErrorCode.writeUnconfirmed);
    assert.match(err.message, /may or may not have been applied/);
    return true;
  });
  assert.ok(await stored('/maybe.mp3'), 'the write was in fact applied');
});

test('a restore that fails part way says exactly what it committed', async () => {
  await clear();
  await store.create({ path: '/old.mp3', username: 'source', password: 'generated-password-1' });
  const mounts = Array.from({ length: 150 }, (_, i): Mount => ({ path: `/r/${i}.mp3`, username: 'source', password: `restore-password-${i}` }));
  let calls = 0;
  const secondFails: TxnSender = async (request) => {
    if (++calls === 2) throw new GRPCUnavailableError('14 UNAVAILABLE: No connection established');
    return client.kv.txn(request);
  };
  await assert.rejects(new MountStore(client, secondFails).restore({ version: 1, mounts }), (err) => {
    assert.ok(err instanceof AutoradioError);
    assert.equal(err.code, ErrorCode.restoreIncomplete);
    assert.match(err.message, /after 1 of 2 transactions, which wrote 100 mounts and removed 0; run the same restore again/);
    assert.doesNotMatch(err.message, /nothing was/);
    return true;
  });
  assert.equal(Object.keys(await snapshot()).length, 101, '100 restored mounts and the old one');
  assert.deepEqual(await new MountStore(client).restore({ version: 1, mounts }), { written: 150, deleted: 1 });
  assert.equal(Object.keys(await snapshot()).length, 150);
});
