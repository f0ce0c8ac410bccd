import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { AudioTail, ReplayTrimmer } from '../../src/redirectord/fanout/replay.js';

/** Cuts `bytes` into pieces of 1..max bytes, as TCP may deliver them. */
function pieces(bytes: Buffer, max = 3000): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const n = Math.min(bytes.length - at, 1 + Math.floor(Math.random() * max));
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

function tailOf(sent: Buffer): Buffer {
  const tail = new AudioTail();
  for (const frame of pieces(sent, 500)) tail.push(frame);
  return tail.value!;
}

test('the replayed burst is dropped and the audio after it passes, byte for byte', () => {
  const heard = randomBytes(200_000);
  const next = randomBytes(50_000);
  // Icecast's burst: the last 64 KiB the listeners already got, then what follows.
  const upstream = Buffer.concat([heard.subarray(heard.length - 65_536), next]);
  const trimmer = new ReplayTrimmer(tailOf(heard));
  const out = Buffer.concat(pieces(upstream).flatMap((p) => trimmer.push(p)));
  assert.equal(trimmer.searching, false);
  assert.equal(trimmer.replayedBytes, 65_536);
  assert.ok(out.equals(next), `passed ${out.length} bytes, expected the ${next.length} new ones`);
});

test('a burst that ends exactly with what was heard passes nothing until new audio comes', () => {
  const heard = randomBytes(100_000);
  const trimmer = new ReplayTrimmer(tailOf(heard));
  assert.deepEqual(trimmer.push(heard.subarray(heard.length - 30_000)), []);
  assert.equal(trimmer.searching, false);
  const fresh = randomBytes(1000);
  assert.ok(Buffer.concat(trimmer.push(fresh)).equals(fresh));
});

test('new audio (a restarted source, another buffer) passes whole once no burst can hold the tail', () => {
  const heard = randomBytes(100_000);
  const other = randomBytes(120_000);
  const trimmer = new ReplayTrimmer(tailOf(heard));
  const out = [...pieces(other).flatMap((p) => trimmer.push(p)), ...trimmer.release()];
  assert.ok(Buffer.concat(out).equals(other));
  assert.equal(trimmer.replayedBytes, 0);
});

test('a short new upstream is held only until released, then passes whole', () => {
  const trimmer = new ReplayTrimmer(tailOf(randomBytes(10_000)));
  const little = randomBytes(5000);
  assert.deepEqual(trimmer.push(little), []);
  assert.equal(trimmer.searching, true);
  assert.ok(Buffer.concat(trimmer.release()).equals(little));
  assert.equal(trimmer.searching, false);
  assert.ok(Buffer.concat(trimmer.push(Buffer.from('x'))).equals(Buffer.from('x')));
});

test('without a tail (too little was sent to recognise) nothing is held', () => {
  const tail = new AudioTail(4096);
  tail.push(randomBytes(1000));
  assert.equal(tail.value, undefined);
  const trimmer = new ReplayTrimmer(tail.value);
  const bytes = randomBytes(100);
  assert.deepEqual(trimmer.push(bytes), [bytes]);
});

test('the tail keeps the last bytes sent, across frames of any size', () => {
  const tail = new AudioTail(4096);
  const sent = randomBytes(20_000);
  for (const p of pieces(sent, 9000)) tail.push(p);
  assert.ok(tail.value!.equals(sent.subarray(sent.length - 4096)));
  tail.clear();
  assert.equal(tail.value, undefined);
});

test('a tail that is not unique in the recent audio (digital silence) is not offered: nothing unheard is trimmed', () => {
  const silence = Buffer.alloc(417, 0x55);
  const tail = new AudioTail();
  for (let i = 0; i < 100; i++) tail.push(silence);
  assert.equal(tail.value, undefined, 'silence repeated: no tail');
  // The new upstream: music nobody heard, then silence that would have matched.
  const music = randomBytes(30_000);
  const trimmer = new ReplayTrimmer(tail.value);
  const out = Buffer.concat([music, Buffer.concat(Array.from({ length: 20 }, () => silence))].flatMap((p) => trimmer.push(p)));
  assert.ok(out.subarray(0, music.length).equals(music), 'the unheard music passes');
  // Distinct audio after the silence gives a usable tail again.
  for (const p of pieces(randomBytes(8000), 400)) tail.push(p);
  assert.ok(tail.value);
});
