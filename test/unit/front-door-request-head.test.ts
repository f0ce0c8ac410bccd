import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadCaptures, type CaptureVector } from '../support/captures.js';
import {
  findHeadEnd,
  looksLikeRequestStart,
  parseRequestHead,
  type RequestHead,
} from '../../src/redirectord/http/request-head.js';
import { classifyRequest } from '../../src/redirectord/http/classify.js';

const vectors = loadCaptures();
const requestHeads = vectors.filter((v) => v.direction === 'request' && !v.continuation);

function parsed(v: CaptureVector): RequestHead {
  const p = parseRequestHead(v.bytes);
  assert.equal(p.kind, 'complete', `${v.file} conn ${v.conn}: ${p.kind}`);
  return (p as { head: RequestHead }).head;
}

test('the capture loader restores the stated byte counts', () => {
  assert.ok(requestHeads.length >= 80, `only ${requestHeads.length} request heads`);
  const files = new Set(vectors.map((v) => v.file));
  assert.ok(files.size >= 50, `only ${files.size} capture files parsed`);
  for (const v of vectors) {
    if (v.declaredLength !== undefined && !v.truncated) {
      assert.equal(v.bytes.length, v.declaredLength, `${v.file} conn ${v.conn} ${v.direction}`);
    }
  }
});

test('every captured request head parses, and the head ends where the capture says', () => {
  for (const v of requestHeads) {
    const head = parsed(v);
    // Capture-server vectors are exactly the head; byte logs may carry audio behind it.
    if (!v.file.startsWith('ffmpeg-5.1-legacy') && !v.file.includes('legacy-silent')) {
      assert.equal(head.headEnd, v.bytes.length, `${v.file} conn ${v.conn}`);
    }
    assert.equal(v.bytes.subarray(head.targetStart, head.targetEnd).toString('latin1'), head.target);
  }
});

test('every captured source-client request goes to the master, every listener GET to the app', () => {
  const expectations: Array<[RegExp, string]> = [
    [/^SOURCE \/\S+ HTTP\/1\.[01]$/, 'source'],
    [/^PUT \/\S+ HTTP\/1\.1$/, 'source'],
    [/^OPTIONS \* HTTP\/1\.1$/, 'source'],
    [/^GET \/admin\/!POKE HTTP\/1\.1$/, 'source'],
    [/^GET \/admin\/metadata\?mode=updinfo&\S+ HTTP\/1\.1$/, 'source'],
    [/^GET \/test\.mp3 HTTP\/1\.[01]$/, 'http'],
  ];
  const seen = new Map<string, number>();
  for (const v of requestHeads) {
    const head = parsed(v);
    const line = `${head.method} ${head.target} ${head.version}`;
    const match = expectations.find(([re]) => re.test(line));
    assert.ok(match, `${v.file}: unexpected request line ${line}`);
    assert.equal(classifyRequest(head).kind, match[1], `${v.file} conn ${v.conn}: ${line}`);
    seen.set(match[1], (seen.get(match[1]) ?? 0) + 1);
  }
  assert.ok((seen.get('source') ?? 0) > 60);
  assert.ok((seen.get('http') ?? 0) >= 9);
});

test('darkice: header lines ending in a bare LF parse like CRLF ones', () => {
  const v = requestHeads.find((x) => x.file === 'darkice-proxy.txt')!;
  assert.ok(v.bytes.includes('audio/mpeg\nAuthorization'), 'vector keeps the bare LF');
  const head = parsed(v);
  assert.equal(head.method, 'SOURCE');
  assert.equal(head.target, '/cap.mp3');
  assert.equal(head.version, 'HTTP/1.0');
  assert.equal(head.headers.get('content-type'), 'audio/mpeg');
  assert.equal(head.headers.get('authorization'), 'Basic c291cmNlOnNyY3B3');
  assert.equal(head.headers.get('ice-name'), 'darkice cap');
  assert.equal(head.fields.length, 6);
  const auth = head.fields.find((f) => f.name === 'authorization')!;
  assert.equal(v.bytes.subarray(auth.start, auth.end).toString('latin1'), 'Authorization: Basic c291cmNlOnNyY3B3\n');
});

test('ffmpeg legacy SOURCE: audio in the same read stays behind the head', () => {
  for (const file of ['ffmpeg-5.1-legacy-source-with-icecast-2.4.4.txt', 'ffmpeg-legacy-silent-server.txt']) {
    const v = requestHeads.find((x) => x.file === file)!;
    const head = parsed(v);
    assert.equal(head.method, 'SOURCE');
    assert.equal(head.headEnd, 212);
    assert.equal(v.bytes.subarray(head.headEnd, head.headEnd + 3).toString('latin1'), 'ID3');
    assert.equal(classifyRequest(head).kind, 'source');
  }
});

test('ffmpeg PUT with Expect and no Content-Length is a source; libshout probes too', () => {
  const put = parsed(requestHeads.find((x) => x.file === 'ffmpeg-5.1-put-with-icecast-2.4.4.txt')!);
  assert.equal(put.headers.get('expect'), '100-continue');
  assert.equal(put.headers.has('content-length'), false);
  const probe = parsed(requestHeads.find((x) => x.file === 'libshout-2.4.6-tls-auto-with-icecast-2.4.4.txt')!);
  assert.equal(probe.target, '*');
  assert.equal(probe.headers.get('upgrade'), 'TLS/1.0, HTTP/1.1');
  const relay = parsed(requestHeads.find((x) => x.file === 'icecast-relay-proxy.txt')!);
  assert.equal(relay.headers.get('icy-metadata'), '1');
  assert.equal(relay.headers.get('host'), '127.0.0.1');
});

test('head end is found across every line-ending mix, and not before the blank line', () => {
  assert.equal(findHeadEnd(Buffer.from('GET / HTTP/1.1\r\nA: b\r\n\r\nBODY')), 24);
  assert.equal(findHeadEnd(Buffer.from('GET / HTTP/1.1\nA: b\n\nBODY')), 21);
  assert.equal(findHeadEnd(Buffer.from('GET / HTTP/1.1\nA: b\r\n\nX')), 22);
  assert.equal(findHeadEnd(Buffer.from('GET / HTTP/1.1\r\nA: b\n\r\nX')), 23);
  assert.equal(findHeadEnd(Buffer.from('GET / HTTP/1.1\r\nA: b\r\n')), -1);
  assert.equal(findHeadEnd(Buffer.from('GET / HTTP/1.1\r\nA: b\r\n\r')), -1);
  assert.equal(findHeadEnd(Buffer.from('\r\nGET / HTTP/1.1\r\n\r\n')), 20);
  // Fed byte by byte, the end appears exactly when the last byte arrives.
  const full = Buffer.from('SOURCE /m ICE/1.0\r\ncontent-type: audio/mpeg\n\r\n');
  for (let n = 1; n < full.length; n++) assert.equal(findHeadEnd(full.subarray(0, n)), -1, `at ${n}`);
  assert.equal(findHeadEnd(full), full.length);
});

test('SOURCE with the ICE/1.0 version parses', () => {
  const p = parseRequestHead(Buffer.from('SOURCE /live.mp3 ICE/1.0\r\nice-name: x\r\n\r\n'));
  assert.equal(p.kind, 'complete');
  const head = (p as { head: RequestHead }).head;
  assert.equal(head.version, 'ICE/1.0');
  assert.equal(classifyRequest(head).kind, 'source');
});

test('malformed heads are reported invalid, binary junk is spotted early', () => {
  assert.equal(parseRequestHead(Buffer.from('GET\r\n\r\n')).kind, 'invalid');
  assert.equal(parseRequestHead(Buffer.from('GET / HTTP/1.1\r\nno colon here\r\n\r\n')).kind, 'invalid');
  assert.equal(parseRequestHead(Buffer.from('G(T / HTTP/1.1\r\n\r\n')).kind, 'invalid');
  assert.equal(parseRequestHead(Buffer.from('GET / HTTP/1.1\r\n')).kind, 'incomplete');
  assert.equal(looksLikeRequestStart(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00])), false); // TLS ClientHello
  assert.equal(looksLikeRequestStart(Buffer.from('GE')), true);
  assert.equal(looksLikeRequestStart(Buffer.from('SOURCE /')), true);
  assert.equal(looksLikeRequestStart(Buffer.from(' GET')), false);
});

test('repeated headers are joined, names are lowercased', () => {
  const p = parseRequestHead(Buffer.from('GET / HTTP/1.1\r\nX-A: 1\r\nx-a: 2\r\nHost: h\r\n\r\n'));
  const head = (p as { head: RequestHead }).head;
  assert.equal(head.headers.get('x-a'), '1, 2');
  assert.equal(head.headers.get('host'), 'h');
  assert.deepEqual(
    head.fields.map((f) => f.name),
    ['x-a', 'x-a', 'host'],
  );
});
