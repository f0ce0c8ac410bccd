import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyEdits } from '../../src/radioctl/commands/mounts.js';
import { run } from '../../src/radioctl/main.js';
import type { Mount } from '../../src/coordination/mount.js';

const plain: Mount = { path: '/a.mp3', username: 'source', password: 'original-password' };
const low: Mount = {
  path: '/low.ogg',
  username: 'source',
  password: 'original-password',
  fallback: '/a.mp3',
  transcoding: { source: '/a.mp3', codec: 'vorbis', bitrate: 64, samplerate: 32000, channels: 2, quality: 0.5 },
};

test('applyEdits: relay, fallback and password changes; the input is not modified', () => {
  const frozen = Object.freeze({ ...plain });
  const relayed = applyEdits(frozen, { relay: 'http://example.com/x', fallback: '/b.mp3' });
  assert.deepEqual(relayed, { ...plain, relayUrl: 'http://example.com/x', fallback: '/b.mp3' });
  assert.deepEqual(applyEdits(relayed, { relay: false }), { ...plain, fallback: '/b.mp3' });
  assert.deepEqual(applyEdits(relayed, { fallback: false }), { ...plain, relayUrl: 'http://example.com/x' });
  assert.deepEqual(applyEdits(relayed, {}), relayed, 'no flags: no change');
  const reset = applyEdits(frozen, { resetPassword: true });
  assert.notEqual(reset.password, plain.password);
  assert.match(reset.password, /^[A-Za-z0-9_-]{20,}$/);
  assert.notEqual(applyEdits(frozen, { resetPassword: true }).password, reset.password);
  assert.deepEqual({ ...reset, password: plain.password }, plain);
});

test('applyEdits: transcoding changes; a codec change resets the sample rate unless given', () => {
  assert.deepEqual(applyEdits(low, { bitrate: 96 }).transcoding, { ...low.transcoding, bitrate: 96 });
  assert.deepEqual(applyEdits(low, { codec: 'mp3', quality: 2 }).transcoding, {
    ...low.transcoding,
    codec: 'mp3',
    samplerate: 44100,
    quality: 2,
  });
  assert.equal(applyEdits(low, { codec: 'opus' }).transcoding!.samplerate, 48000);
  assert.equal(applyEdits(low, { codec: 'mp3', samplerate: 22050 }).transcoding!.samplerate, 22050);
  assert.deepEqual(applyEdits(low, { source: '/b.mp3', channels: 1 }).transcoding, {
    ...low.transcoding,
    source: '/b.mp3',
    channels: 1,
  });
  assert.equal(low.transcoding!.bitrate, 64, 'the input is not modified');
  assert.throws(() => applyEdits(plain, { bitrate: 64 }), /not a transcoding mount/);
});

async function cli(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, (s) => out.push(s), (s) => err.push(s));
  return { code, out, err };
}

test('usage errors exit 2 with one line on stderr, before any etcd contact', async () => {
  // Port 1 refuses connections: a usage error must be reported as such, not as "etcd unreachable".
  const etcd = ['--etcd-urls', 'http://127.0.0.1:1'];
  const cases: [string[], RegExp][] = [
    [[], /missing command/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['create-mount'], /missing required argument 'path'/],
    [['create-mount', '/a.mp3', '--colour', 'red'], /unknown option '--colour'/],
    [['create-transcoding-mount', '/t.mp3', '--source', '/a.mp3', '--bitrate', '64'], /--codec/],
    [['create-transcoding-mount', '/t.mp3', '--source', '/a.mp3', '--codec', 'flac', '--bitrate', '64'], /Allowed choices are mp3, vorbis, opus, aac/],
    [['create-transcoding-mount', '/t.mp3', '--source', '/a.mp3', '--codec', 'mp3', '--bitrate', '6x4'], /--bitrate must be an integer/],
    [['create-transcoding-mount', '/t.mp3', '--source', '/a.mp3', '--codec', 'mp3', '--bitrate', '64', '--channels', '3'], /--channels/],
    [['edit-mount', '/a.mp3', '--quality', 'best'], /--quality must be a number/],
  ];
  for (const [argv, re] of cases) {
    const r = await cli([...etcd, ...argv]);
    assert.equal(r.code, 2, `${argv.join(' ')}: ${r.err.join('|')}`);
    assert.equal(r.err.length, 1, argv.join(' '));
    assert.match(r.err[0]!, /^radioctl: /);
    assert.match(r.err[0]!, re);
    assert.doesNotMatch(r.err[0]!, /\n/);
    assert.deepEqual(r.out, []);
  }
});

test('with --json a usage error is one JSON line with code AR_USAGE', async () => {
  const r = await cli(['--etcd-urls', 'http://127.0.0.1:1', '--json']);
  assert.equal(r.code, 2);
  assert.equal(r.err.length, 1);
  assert.deepEqual(JSON.parse(r.err[0]!), { error: { code: 'AR_USAGE', message: 'missing command (see radioctl --help)' } });
});

test('help goes to stdout with exit 0', async () => {
  for (const argv of [['--help'], ['help'], ['edit-mount', '--help']]) {
    const r = await cli(argv);
    assert.equal(r.code, 0, argv.join(' '));
    assert.match(r.out.join('\n'), /^Usage: radioctl/);
    assert.deepEqual(r.err, []);
  }
  const edit = (await cli(['edit-mount', '--help'])).out.join('\n');
  for (const flag of ['--relay', '--no-relay', '--fallback', '--no-fallback', '--reset-password']) assert.ok(edit.includes(flag), flag);
  assert.match((await cli(['--help'])).out.join('\n'), /--etcd-urls/);
});
