import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadCaptures } from '../support/captures.js';
import { IcyReframer, parseMetaint } from '../../src/redirectord/http/icy-reframer.js';
import { parseRequestHead, type RequestHead } from '../../src/redirectord/http/request-head.js';
import {
  parseResponseHead,
  plainResponse,
  preflightResponse,
  withCorsHeaders,
} from '../../src/redirectord/http/stream-response.js';
import { upstreamRequest } from '../../src/redirectord/http/stream-proxy.js';

/** A deterministic ICY body: audio bytes count 0,1,2,... (mod 251) from `audioStart`. */
function icyBody(metaint: number, blocks: number, audioStart: number, titles: (i: number) => string | undefined): Buffer {
  const parts: Buffer[] = [];
  let a = audioStart;
  for (let b = 0; b < blocks; b++) {
    const audio = Buffer.alloc(metaint);
    for (let i = 0; i < metaint; i++) audio[i] = a++ % 251;
    parts.push(audio, metaBlock(titles(b)));
  }
  return Buffer.concat(parts);
}

function metaBlock(title: string | undefined): Buffer {
  if (title === undefined) return Buffer.from([0]);
  const text = Buffer.from(`StreamTitle='${title}';`);
  const n = Math.ceil(text.length / 16);
  const block = Buffer.alloc(1 + n * 16);
  block[0] = n;
  text.copy(block, 1);
  return block;
}

/** Strict ICY parser: throws unless every block sits exactly every `metaint` audio bytes. */
function deframe(body: Buffer, metaint: number): { audio: Buffer; titles: string[]; tail: number } {
  const audio: Buffer[] = [];
  const titles: string[] = [];
  let i = 0;
  while (i + metaint < body.length) {
    audio.push(body.subarray(i, i + metaint));
    i += metaint;
    const n = body[i]! * 16;
    const text = body.subarray(i + 1, i + 1 + n).toString('latin1').replace(/\0+$/, '');
    if (n > 0) {
      // A title cut off by a dropped upstream is NUL-padded: a prefix of a real one.
      const ok = /^StreamTitle='[^']*';$/.test(text) || "StreamTitle='first title';".startsWith(text);
      assert.ok(ok, `metadata block at ${i}: ${JSON.stringify(text)}`);
      titles.push(text);
    }
    i += 1 + n;
  }
  audio.push(body.subarray(i));
  return { audio: Buffer.concat(audio), titles, tail: body.length - i };
}

function splitRandom(buf: Buffer, seed: number): Buffer[] {
  const out: Buffer[] = [];
  let s = seed;
  for (let i = 0; i < buf.length; ) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const n = 1 + (s % 97);
    out.push(buf.subarray(i, i + n));
    i += n;
  }
  return out;
}

test('reframer: passes chunks through untouched while nothing reconnected', () => {
  const body = icyBody(64, 10, 0, (b) => (b === 0 ? 'one' : undefined));
  const r = new IcyReframer(64);
  const chunks = splitRandom(body, 7);
  for (const c of chunks) {
    const out = r.push(c);
    assert.equal(out.length, 1);
    assert.equal(out[0], c, 'the same buffer, not a copy');
  }
});

test('reframer: a reconnect at any point keeps the listener framing and all audio', () => {
  const metaint = 48;
  for (let cut = 0; cut < 3 * (metaint + 17); cut += 5) {
    const first = icyBody(metaint, 3, 0, (b) => (b === 1 ? 'first title' : undefined)).subarray(0, cut + 1);
    const second = icyBody(metaint, 4, 100, (b) => (b === 0 ? 'second title' : b === 2 ? 'third' : undefined));
    const r = new IcyReframer(metaint);
    const out: Buffer[] = [];
    for (const c of splitRandom(first, cut)) out.push(...r.push(c));
    r.restartUpstream(metaint);
    for (const c of splitRandom(second, cut + 1)) out.push(...r.push(c));
    const got = deframe(Buffer.concat(out), metaint);
    const want = Buffer.concat([deframe(first, metaint).audio, deframe(second, metaint).audio]);
    assert.deepEqual(got.audio, want, `cut ${cut}: audio`);
    assert.ok(got.titles.includes("StreamTitle='second title';"), `cut ${cut}: ${got.titles.join()}`);
    assert.ok(got.titles.includes("StreamTitle='third';"), `cut ${cut}`);
  }
});

test('reframer: an upstream with a different interval or none is re-framed to the listener interval', () => {
  const r = new IcyReframer(40);
  const out: Buffer[] = [];
  out.push(...r.push(icyBody(40, 2, 0, () => undefined).subarray(0, 30)));
  r.restartUpstream(100);
  out.push(...r.push(icyBody(100, 3, 30, (b) => (b === 1 ? 'x' : undefined))));
  r.restartUpstream(undefined);
  const raw = Buffer.alloc(130);
  for (let i = 0; i < raw.length; i++) raw[i] = (330 + i) % 251;
  out.push(...r.push(raw));
  const got = deframe(Buffer.concat(out), 40);
  for (let i = 0; i < got.audio.length; i++) assert.equal(got.audio[i], i % 251, `audio byte ${i}`);
  assert.equal(got.audio.length, 30 + 300 + 130);
  assert.deepEqual(got.titles, ["StreamTitle='x';"]);
});

test('parseMetaint accepts only positive integers', () => {
  assert.equal(parseMetaint('16000'), 16000);
  assert.equal(parseMetaint(' 8192 '), 8192);
  assert.equal(parseMetaint('0'), undefined);
  assert.equal(parseMetaint('-1'), undefined);
  assert.equal(parseMetaint('1e3'), undefined);
  assert.equal(parseMetaint(undefined), undefined);
});

test("Icecast's captured replies parse; CORS is added and nothing else changes", () => {
  const replies = loadCaptures().filter((v) => v.file === 'icecast-listener-replies.txt');
  assert.equal(replies.length, 4);
  const statuses = replies.map((v) => {
    const p = parseResponseHead(v.bytes);
    assert.equal(p.kind, 'complete');
    return p.kind === 'complete' ? p.head.status : 0;
  });
  assert.deepEqual(statuses, [200, 200, 200, 404]);
  const withMeta = replies[1]!.bytes;
  const p = parseResponseHead(withMeta);
  assert.equal(p.kind === 'complete' && p.head.headers.get('icy-metaint'), '16000');
  const out = withCorsHeaders(withMeta).toString('latin1');
  const original = withMeta.toString('latin1');
  assert.ok(out.startsWith(original.slice(0, -2)), 'every Icecast byte kept in place');
  assert.match(out, /\r\nAccess-Control-Allow-Origin: \*\r\n/);
  assert.match(out, /\r\nAccess-Control-Expose-Headers: [^\r]*icy-metaint[^\r]*\r\n\r\n$/);
  const reparsed = parseResponseHead(Buffer.from(out, 'latin1'));
  assert.equal(reparsed.kind === 'complete' && reparsed.head.headers.get('icy-name'), 'ar test 440 Hz');
});

test('withCorsHeaders replaces upstream CORS headers and copes with a bare status line', () => {
  const out = withCorsHeaders(Buffer.from('HTTP/1.0 200 OK\r\nAccess-Control-Allow-Origin: http://x\r\n\r\n'));
  assert.equal(out.toString().match(/Access-Control-Allow-Origin/g)?.length, 1);
  assert.match(out.toString(), /Allow-Origin: \*/);
  assert.match(withCorsHeaders(Buffer.from('HTTP/1.0 200 OK\n\n')).toString(), /^HTTP\/1\.0 200 OK\r\nAccess-Control/);
});

test('upstreamRequest rewrites only the request-target', () => {
  const listener = loadCaptures().find((v) => v.file === 'listeners-via-302.txt' && v.direction === 'request')!;
  const bytes = Buffer.from(listener.bytes.toString('latin1').replace('GET /test.mp3', 'GET /_stream/test.mp3?x=1'), 'latin1');
  const p = parseRequestHead(bytes);
  const head = (p as { head: RequestHead }).head;
  const out = upstreamRequest(bytes, head, '/test.mp3?x=1');
  assert.equal(
    out.toString('latin1'),
    listener.bytes.toString('latin1').replace('GET /test.mp3', 'GET /test.mp3?x=1'),
  );
});

test('upstreamRequest drops forwarding headers the listener sent and states its real address', () => {
  const bytes = Buffer.from(
    'GET /_stream/test.mp3 HTTP/1.1\r\nHost: radio.test\r\nX-Forwarded-For: 198.51.100.66\r\nForwarded: for=198.51.100.66\r\n' +
      'X-Real-IP: 198.51.100.66\r\nIcy-MetaData: 1\r\n\r\n',
    'latin1',
  );
  const head = (parseRequestHead(bytes) as { head: RequestHead }).head;
  assert.equal(
    upstreamRequest(bytes, head, '/test.mp3', '::ffff:203.0.113.9').toString('latin1'),
    'GET /test.mp3 HTTP/1.1\r\nHost: radio.test\r\nIcy-MetaData: 1\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n',
  );
  const bare = Buffer.from('GET /_stream/test.mp3 HTTP/1.0\r\n\r\n', 'latin1');
  const bareHead = (parseRequestHead(bare) as { head: RequestHead }).head;
  assert.equal(upstreamRequest(bare, bareHead, '/test.mp3', '2001:db8::7').toString('latin1'), 'GET /test.mp3 HTTP/1.0\r\nX-Forwarded-For: 2001:db8::7\r\n\r\n');
});

test('preflight and plain answers are well-formed', () => {
  const pre = preflightResponse(true, 'icy-metadata, range').toString();
  assert.match(pre, /^HTTP\/1\.1 204 No Content\r\n/);
  assert.match(pre, /Access-Control-Allow-Headers: icy-metadata, range\r\n/);
  assert.match(pre, /Connection: keep-alive\r\n\r\n$/);
  assert.match(preflightResponse(false, 'x\r\nSet-Cookie: a').toString(), /Allow-Headers: Icy-MetaData, Range/);
  const plain = plainResponse(503, 'No master.').toString();
  assert.match(plain, /^HTTP\/1\.0 503 Service Unavailable\r\n/);
  assert.match(plain, /Content-Length: 11\r\n/);
  assert.ok(plain.endsWith('\r\n\r\nNo master.\n'));
});
