import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  adtsFrameLength,
  createFrameSplitter,
  frameFormat,
  mpegFrameLength,
  type FrameFormat,
  type SplitPiece,
} from '../../src/redirectord/fanout/frame-splitter.js';
import { IcyDeframer, streamTitle } from '../../src/redirectord/fanout/icy-deframer.js';
import { IcyFramer } from '../../src/redirectord/fanout/icy-framer.js';
import { BurstBuffer } from '../../src/redirectord/fanout/burst-buffer.js';
import { ChunkCoalescer } from '../../src/redirectord/fanout/chunk-coalescer.js';
import { chunkVerdict } from '../../src/redirectord/fanout/slow-listener.js';
import { asksForMetadata, listenerHead } from '../../src/redirectord/fanout/listener-head.js';

/** Real encoder output (see test/fixtures/audio/README.md). */
const fixture = (name: string): Buffer => readFileSync(new URL(`../fixtures/audio/${name}`, import.meta.url));
const MP3 = fixture('tone-64k.mp3');
const AAC = fixture('tone-64k.aac');
const VORBIS = fixture('tone.ogg');
const OPUS = fixture('tone.opus');

/** A deterministic sequence of piece sizes between 1 and `max`. */
function pieces(buf: Buffer, max: number, seed = 7): Buffer[] {
  const out: Buffer[] = [];
  let x = seed;
  for (let i = 0; i < buf.length; ) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const n = 1 + (x % max);
    out.push(buf.subarray(i, i + n));
    i += n;
  }
  return out;
}

function split(format: FrameFormat, input: Buffer[]): { pieces: SplitPiece[]; headers: readonly Buffer[] } {
  const s = createFrameSplitter(format);
  const out: SplitPiece[] = [];
  for (const p of input) out.push(...s.push(p));
  return { pieces: out, headers: s.headers };
}

/** Walks `buf` frame by frame; true when it is whole frames from the first byte to the last. */
function wholeFrames(buf: Buffer, length: (b: Buffer, i: number) => number): boolean {
  let i = 0;
  while (i < buf.length) {
    if (i + 6 > buf.length) return false;
    const n = length(buf, i);
    if (n === 0) return false;
    i += n;
  }
  return i === buf.length;
}

for (const [name, format, bytes, length] of [
  ['MP3', 'mpeg', MP3, mpegFrameLength],
  ['AAC ADTS', 'adts', AAC, adtsFrameLength],
] as const) {
  test(`${name}: every piece is whole frames, and together they are the capture but its last (unconfirmed) frame`, () => {
    for (const max of [1, 7, 333, 4096]) {
      const { pieces: out } = split(format, pieces(bytes, max));
      assert.ok(out.length > 0);
      for (const p of out) assert.ok(wholeFrames(p.bytes, length), `piece of ${p.bytes.length} B (pieces up to ${max} B)`);
      const joined = Buffer.concat(out.map((p) => p.bytes));
      assert.ok(joined.length > bytes.length - 2000 && joined.length < bytes.length, `${joined.length} of ${bytes.length}`);
      assert.ok(joined.equals(bytes.subarray(0, joined.length)), 'nothing dropped or reordered');
    }
  });

  test(`${name}: garbage and a cut mid-frame are skipped up to the next frame`, () => {
    const firstLen = length(bytes, 0);
    // Joining mid-frame (a new upstream) after junk that contains a lone sync word.
    const input = Buffer.concat([Buffer.from([0xff, 0xfb, 0x00, 0x12, 0xff]), bytes.subarray(firstLen + 5)]);
    const { pieces: out } = split(format, pieces(input, 500));
    const joined = Buffer.concat(out.map((p) => p.bytes));
    assert.ok(wholeFrames(joined, length));
    const start = bytes.indexOf(joined.subarray(0, 64));
    assert.ok(start > firstLen, 'it starts on a later frame boundary of the capture');
    assert.ok(wholeFrames(bytes.subarray(0, start), length), 'that boundary is a real one');
  });
}

test('MP3 frame lengths: 128 kbit/s 44.1 kHz with and without padding, MPEG-2 layer III, layer I, invalid', () => {
  assert.equal(mpegFrameLength(Buffer.from([0xff, 0xfb, 0x90, 0x64]), 0), 417);
  assert.equal(mpegFrameLength(Buffer.from([0xff, 0xfb, 0x92, 0x64]), 0), 418);
  assert.equal(mpegFrameLength(Buffer.from([0xff, 0xf3, 0x84, 0x64]), 0), 192, 'MPEG-2 layer III, 64 kbit/s, 24 kHz: 72*64000/24000');
  assert.equal(mpegFrameLength(Buffer.from([0xff, 0xff, 0x90, 0x64]), 0), 312, 'layer I, index 9 = 288 kbit/s, 44.1 kHz: floor(12*288000/44100)*4');
  assert.equal(mpegFrameLength(Buffer.from([0xff, 0xfb, 0xf0, 0x64]), 0), 0, 'bitrate index 15');
  assert.equal(mpegFrameLength(Buffer.from([0xff, 0xfb, 0x9c, 0x64]), 0), 0, 'sample rate index 3');
});

for (const [name, bytes, headerPages] of [
  ['Vorbis', VORBIS, 2],
  ['Opus', OPUS, 2],
] as const) {
  test(`Ogg ${name}: header pages kept apart for new listeners, audio pages whole and in order`, () => {
    for (const max of [1, 50, 4096]) {
      const { pieces: out, headers } = split('ogg', pieces(bytes, max));
      assert.equal(headers.length, headerPages);
      assert.equal(headers[0]!.subarray(0, 4).toString('latin1'), 'OggS');
      assert.ok((headers[0]![5]! & 2) !== 0, 'the first header page is the BOS page');
      assert.ok(out[0]!.kind === 'headers');
      const frames = out.filter((p) => p.kind === 'frames');
      for (const p of frames) {
        assert.equal(p.bytes.subarray(0, 4).toString('latin1'), 'OggS');
        assert.notEqual(p.bytes.readBigUInt64LE(6), 0n, 'no header page among the audio pages');
      }
      assert.ok(Buffer.concat([...headers, ...frames.map((p) => p.bytes)]).equals(bytes), 'headers then pages are the whole stream');
    }
  });
}

test('Ogg: a new chain (a second stream after the first) replaces the headers', () => {
  const s = createFrameSplitter('ogg');
  const first = s.push(VORBIS);
  const firstHeaders = [...s.headers];
  const second = s.push(OPUS);
  assert.deepEqual(first.map((p) => p.kind), ['headers', 'frames']);
  assert.deepEqual(second.map((p) => p.kind), ['headers', 'frames']);
  assert.equal(s.headers.length, 2);
  assert.ok(!s.headers[0]!.equals(firstHeaders[0]!));
  assert.ok(s.headers[0]!.subarray(28, 36).toString('latin1') === 'OpusHead');
});

test('content types choose the splitter; other types pass through as they come', () => {
  assert.equal(frameFormat('audio/mpeg'), 'mpeg');
  assert.equal(frameFormat('audio/aacp'), 'adts');
  assert.equal(frameFormat('application/ogg'), 'ogg');
  assert.equal(frameFormat('Audio/Ogg; codecs=opus'), 'ogg');
  assert.equal(frameFormat('audio/webm'), 'opaque');
  const chunk = Buffer.from('anything');
  assert.deepEqual(createFrameSplitter('opaque').push(chunk), [{ kind: 'frames', bytes: chunk }]);
});

function metaBlock(title: string): Buffer {
  const text = Buffer.from(`StreamTitle='${title}';`);
  const block = Buffer.alloc(1 + Math.ceil(text.length / 16) * 16);
  block[0] = (block.length - 1) / 16;
  text.copy(block, 1);
  return block;
}

/** An ICY body as Icecast writes it: `metaint` audio bytes, then a block (the title when it changed, else 0). */
function icyStream(audio: Buffer, metaint: number, titleAt: (audioOffset: number) => string): Buffer {
  const parts: Buffer[] = [];
  let last: string | undefined;
  for (let i = 0; i + metaint <= audio.length; i += metaint) {
    parts.push(audio.subarray(i, i + metaint));
    const title = titleAt(i + metaint);
    parts.push(title === last ? Buffer.from([0]) : metaBlock(title));
    last = title;
  }
  return Buffer.concat(parts);
}

/** Reads an ICY body back: audio, and the title seen after each audio offset (only where a block names one). */
function readIcy(body: Buffer, metaint: number): { audio: Buffer; titles: { at: number; title: string }[]; problems: number } {
  const d = new IcyDeframer(metaint);
  const { audio, metadata } = d.push(body);
  const titles: { at: number; title: string }[] = [];
  // Walk again for the positions (the deframer reports blocks, not offsets).
  let i = 0;
  let at = 0;
  let problems = 0;
  while (i + metaint < body.length) {
    i += metaint;
    at += metaint;
    const n = body[i]! * 16;
    if (n > 0) {
      const t = streamTitle(body.subarray(i, i + 1 + n));
      if (t === undefined) problems++;
      else titles.push({ at, title: t });
    }
    i += 1 + n;
  }
  assert.equal(metadata.length, titles.length + problems);
  return { audio: Buffer.concat(audio), titles, problems };
}

test('ICY de-framer: audio and title blocks come out whole however the body is cut', () => {
  const audio = Buffer.concat([MP3, MP3]);
  const body = icyStream(audio, 1000, (at) => (at < 9000 ? 'first song' : "second 'song'"));
  for (const max of [1, 13, 999, 1001, 65_536]) {
    const d = new IcyDeframer(1000);
    const got = { audio: [] as Buffer[], metadata: [] as Buffer[] };
    for (const p of pieces(body, max)) {
      const r = d.push(p);
      got.audio.push(...r.audio);
      got.metadata.push(...r.metadata);
    }
    const whole = Math.floor(audio.length / 1000) * 1000;
    assert.ok(Buffer.concat(got.audio).equals(audio.subarray(0, whole)));
    assert.deepEqual(got.metadata.map(streamTitle), ['first song', "second 'song'"]);
  }
  assert.equal(new IcyDeframer(undefined).push(body).metadata.length, 0, 'without a metaint every byte is audio');
});

test('ICY framer: blocks at each metaint asked for, the current title first and at each change, no copies of audio', () => {
  const chunks = pieces(Buffer.concat([MP3, MP3, MP3]), 3000);
  const first = metaBlock('first song');
  const second = metaBlock('second song');
  for (const metaint of [1, 100, 8192, 16_000]) {
    const framer = new IcyFramer(metaint);
    const out: Buffer[] = [];
    let sent = 0;
    for (const c of chunks) {
      const meta = sent < 20_000 ? first : second;
      out.push(...framer.frame(c, meta));
      sent += c.length;
    }
    const body = Buffer.concat(out);
    const read = readIcy(body, metaint);
    assert.equal(read.problems, 0);
    assert.ok(read.audio.equals(Buffer.concat(chunks).subarray(0, read.audio.length)), `metaint ${metaint}: audio intact`);
    assert.deepEqual(
      read.titles.map((t) => t.title),
      ['first song', 'second song'],
      `metaint ${metaint}: the title once at the start and once at the change`,
    );
    assert.equal(read.titles[0]!.at, metaint, 'the first block carries the title');
  }
});

test('ICY framer with no title yet sends empty blocks; a bad metaint is refused', () => {
  const framer = new IcyFramer(4);
  assert.deepEqual(Buffer.concat(framer.frame(Buffer.from('abcdefghij'), undefined)), Buffer.from('abcd\0efgh\0ij'));
  assert.throws(() => new IcyFramer(0), RangeError);
});

test('burst: about 64 KiB of the most recent audio, starting on a frame boundary', () => {
  const s = createFrameSplitter('mpeg');
  const burst = new BurstBuffer(65_536);
  const stream = Buffer.concat(Array.from({ length: 12 }, () => MP3));
  for (const p of pieces(stream, 2000)) for (const out of s.push(p)) burst.push(out.bytes);
  const contents = Buffer.concat(burst.contents());
  assert.ok(contents.length >= 65_536 && contents.length < 65_536 + 2000 + 418, `${contents.length} B`);
  assert.ok(wholeFrames(contents, mpegFrameLength), 'whole frames from its first byte');
  assert.equal(burst.length, contents.length);
  burst.clear();
  assert.equal(burst.contents().length, 0);
});

test('slow listener: written while its queue is small, skipped above the bound, dropped after skipping too long', () => {
  const policy = { skipAboveBytes: 1000, dropAfterMs: 5000 };
  assert.deepEqual(chunkVerdict(policy, 1000, undefined, 0), { kind: 'write' });
  assert.deepEqual(chunkVerdict(policy, 1001, undefined, 100), { kind: 'skip', since: 100 });
  assert.deepEqual(chunkVerdict(policy, 50_000, 100, 5099), { kind: 'skip', since: 100 });
  assert.deepEqual(chunkVerdict(policy, 50_000, 100, 5100), { kind: 'drop' });
  assert.deepEqual(chunkVerdict(policy, 10, 100, 9000), { kind: 'write' }, 'caught up: the run of skips is over');
});

test("listener head: Icecast's head with CORS; icy-metaint only for a listener that asked", () => {
  const upstream = Buffer.from(
    'HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\nicy-name:Radio\r\nicy-metaint:16000\r\nAccess-Control-Allow-Origin: *\r\n\r\n',
    'latin1',
  );
  const asked = listenerHead(upstream, true).toString('latin1');
  const plain = listenerHead(upstream, false).toString('latin1');
  assert.match(asked, /^HTTP\/1\.0 200 OK\r\nContent-Type: audio\/mpeg\r\nicy-name:Radio\r\nicy-metaint:16000\r\n/);
  assert.match(asked, /Access-Control-Expose-Headers: [^\r]*icy-metaint/);
  assert.doesNotMatch(plain, /^icy-metaint/im);
  assert.match(plain, /icy-name:Radio\r\n/);
  assert.ok(plain.endsWith('\r\n\r\n'));
  assert.equal(asksForMetadata('1'), true);
  assert.equal(asksForMetadata('0'), false);
  assert.equal(asksForMetadata(undefined), false);
});

test('coalescer: runs of frames gathered into chunks of at least maxBytes that start on a frame, nothing lost', () => {
  const s = createFrameSplitter('mpeg');
  const c = new ChunkCoalescer(4096);
  const chunks: Buffer[] = [];
  const runs: Buffer[] = [];
  for (const p of pieces(MP3, 600)) {
    for (const out of s.push(p)) {
      runs.push(out.bytes);
      const chunk = c.push(out.bytes);
      if (chunk) chunks.push(chunk);
    }
  }
  assert.equal(c.empty, false);
  const rest = c.take()!;
  assert.equal(c.empty, true);
  assert.equal(c.take(), undefined);
  for (const chunk of chunks) {
    assert.ok(chunk.length >= 4096 && chunk.length < 4096 + 600 + 418, `${chunk.length} B`);
    assert.ok(wholeFrames(chunk, mpegFrameLength));
  }
  assert.ok(chunks.length >= 2 && chunks.length < runs.length, `${runs.length} runs gathered into ${chunks.length} chunks`);
  assert.ok(Buffer.concat([...chunks, rest]).equals(Buffer.concat(runs)));
});
