import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRequestHead, type RequestHead } from '../../src/redirectord/http/request-head.js';
import { classifyRequest, isContinuable, type Classification } from '../../src/redirectord/http/classify.js';

function head(text: string): RequestHead {
  const p = parseRequestHead(Buffer.from(text.replace(/\n/g, '\r\n') + '\r\n'));
  assert.equal(p.kind, 'complete', text);
  return (p as { head: RequestHead }).head;
}

function classify(text: string, opts?: { streamProxy?: boolean }): Classification {
  return classifyRequest(head(text), opts);
}

test('PUT is a source only without body framing', () => {
  assert.equal(classify('PUT /m.mp3 HTTP/1.1\nExpect: 100-continue\n').kind, 'source');
  assert.equal(classify('PUT /api/x HTTP/1.1\nContent-Length: 5\n').kind, 'http');
  assert.equal(classify('PUT /api/x HTTP/1.1\nTransfer-Encoding: chunked\n').kind, 'http');
  assert.equal(classify('PUT /m.mp3 HTTP/1.1\nTransfer-Encoding: identity\n').kind, 'source');
});

test('OPTIONS * goes to Icecast, other OPTIONS do not', () => {
  assert.equal(classify('OPTIONS * HTTP/1.1\nUpgrade: TLS/1.0, HTTP/1.1\n').kind, 'source');
  assert.equal(classify('OPTIONS /status.json HTTP/1.1\n').kind, 'http');
  assert.equal(classify('OPTIONS /_stream/a.mp3 HTTP/1.1\nOrigin: http://x\n').kind, 'stream-preflight');
});

test('only the metadata update and the POKE probe reach Icecast admin (listclients is answered by the front door)', () => {
  assert.equal(classify('GET /admin/metadata?mode=updinfo&mount=/a.mp3&song=x HTTP/1.1\n').kind, 'source');
  assert.equal(classify('GET /admin/!POKE HTTP/1.1\n').kind, 'source');
  for (const path of [
    '/admin/stats',
    '/admin/killsource?mount=/a.mp3',
    '/admin/moveclients',
    '/admin/metadata.xsl?mount=/a.mp3',
    '/admin/metadata/../stats',
    '/admin/',
  ]) {
    const c = classify(`GET ${path} HTTP/1.1\n`);
    assert.deepEqual({ kind: c.kind, status: (c as { status?: number }).status }, { kind: 'reject', status: 403 }, path);
  }
  assert.equal(classify('POST /admin/stats HTTP/1.1\nContent-Length: 0\n').kind, 'reject');
});

test('/_stream paths map to Icecast mounts; anything not mount-shaped is refused', () => {
  assert.deepEqual(classify('GET /_stream/live/a.mp3 HTTP/1.1\n'), { kind: 'stream', upstreamTarget: '/live/a.mp3' });
  assert.deepEqual(classify('HEAD /_stream/a.ogg?x=1 HTTP/1.0\n'), { kind: 'stream', upstreamTarget: '/a.ogg?x=1' });
  for (const path of [
    '/_stream',
    '/_stream/',
    '/_stream/../admin/stats',
    '/_stream/admin/stats',
    '/_stream/admin',
    '/_stream//admin/stats',
    '/_stream/%61dmin/stats',
    '/_stream/_x.mp3',
    '/_stream/a/./b.mp3',
  ]) {
    const c = classify(`GET ${path} HTTP/1.1\n`);
    assert.equal(c.kind, 'reject', path);
    assert.equal((c as { status: number }).status, 404, path);
  }
  const post = classify('POST /_stream/a.mp3 HTTP/1.1\nContent-Length: 0\n');
  assert.equal(post.kind, 'reject');
  assert.equal((post as { status: number }).status, 405);
  assert.equal(classify('GET /_streamer HTTP/1.1\n').kind, 'http');
});

test('with the stream proxy disabled /_stream goes to the app', () => {
  assert.equal(classify('GET /_stream/a.mp3 HTTP/1.1\n', { streamProxy: false }).kind, 'http');
});

test('everything else goes to the HTTP app', () => {
  for (const line of ['GET / HTTP/1.1', 'GET /a.mp3 HTTP/1.1', 'GET /a.mp3.m3u HTTP/1.0', 'POST /x HTTP/1.1', 'DELETE /x HTTP/1.1']) {
    assert.equal(classify(`${line}\n`).kind, 'http', line);
  }
});

test('continuable stream types', () => {
  assert.equal(isContinuable('audio/mpeg'), true);
  assert.equal(isContinuable('application/ogg'), true);
  assert.equal(isContinuable('audio/ogg; codecs=opus'), true);
  assert.equal(isContinuable('text/html; charset=utf-8'), false);
  assert.equal(isContinuable(undefined), false);
});

test('with the cluster mounts known, /_stream serves only those (not Icecast pages)', () => {
  const isMount = (p: string) => p === '/live.mp3';
  const c = (target: string) => classifyRequest(head(`GET ${target} HTTP/1.1\nHost: x\n`), { isMount });
  assert.deepEqual(c('/_stream/live.mp3?x=1'), { kind: 'stream', upstreamTarget: '/live.mp3?x=1' });
  assert.equal(c('/_stream/status-json.xsl').kind, 'reject');
  assert.equal(c('/_stream/other.mp3').kind, 'reject');
});

test('/_relay/<mount> is a relay for the local Icecast only: from outside it does not exist', () => {
  const h = head('GET /_relay/live.mp3?x=1 HTTP/1.0\nIcy-MetaData: 1\n');
  assert.deepEqual(classifyRequest(h, { fromLoopback: true }), { kind: 'relay', upstreamTarget: '/live.mp3?x=1' });
  assert.equal(classifyRequest(h, { fromLoopback: false }).kind, 'reject');
  assert.equal(classifyRequest(h, {}).kind, 'reject');
  // Even with the listener proxy off (the relay is the cluster's own plumbing).
  assert.equal(classifyRequest(h, { fromLoopback: true, streamProxy: false }).kind, 'relay');
  const notMount = classifyRequest(h, { fromLoopback: true, isMount: () => false });
  assert.deepEqual(notMount.kind === 'reject' && notMount.status, 404);
  for (const bad of ['GET /_relay/../admin/stats HTTP/1.0\n', 'GET /_relay HTTP/1.0\n', 'GET /_relay/%2e%2e/x HTTP/1.0\n']) {
    assert.equal(classifyRequest(head(bad), { fromLoopback: true }).kind, 'reject', bad);
  }
  const post = classifyRequest(head('POST /_relay/live.mp3 HTTP/1.0\nContent-Length: 0\n'), { fromLoopback: true });
  assert.deepEqual(post.kind === 'reject' && post.status, 405);
});
