import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeFrontDoorListeners, parseFrontDoorListeners } from '../../src/coordination/front-door-listeners.js';
import { listenerCountsResponse, parseResponseHead } from '../../src/redirectord/http/stream-response.js';
import { classifyRequest } from '../../src/redirectord/http/classify.js';
import { parseRequestHead, type RequestHead } from '../../src/redirectord/http/request-head.js';

function head(text: string): RequestHead {
  const r = parseRequestHead(Buffer.from(text, 'latin1'));
  if (r.kind !== 'complete') throw new Error(`head ${r.kind}`);
  return r.head;
}

test("the front door's answer is what radiod parses", () => {
  const answer = listenerCountsResponse(new Map([['/a.mp3', 12]]), new Map([['/a.mp3', 1], ['/b.mp3', 1]]));
  const parsed = parseResponseHead(answer);
  assert.equal(parsed.kind, 'complete');
  if (parsed.kind !== 'complete') return;
  assert.equal(parsed.head.status, 200);
  const body = answer.subarray(parsed.head.headEnd).toString('utf8');
  assert.equal(Number(parsed.head.headers.get('content-length')), Buffer.byteLength(body));
  assert.deepEqual(parseFrontDoorListeners(body), { mounts: { '/a.mp3': 12 }, feeds: { '/a.mp3': 1, '/b.mp3': 1 } });
});

test('radiod refuses a malformed answer', () => {
  assert.throws(() => parseFrontDoorListeners('nope'), /not JSON/);
  assert.throws(() => parseFrontDoorListeners('{"mounts":{"/a":-1},"feeds":{}}'), /front door listeners/);
  assert.throws(() => parseFrontDoorListeners('{"mounts":{}}'), /front door listeners/);
});

test('merge: feeds out, front door listeners in, mounts with nobody left out', () => {
  assert.deepEqual(mergeFrontDoorListeners({ '/a': 3, '/b': 1 }, { mounts: { '/a': 5 }, feeds: { '/a': 1, '/b': 1 } }), { '/a': 7 });
  assert.deepEqual(mergeFrontDoorListeners({ '/a': 3 }, undefined), { '/a': 3 });
  assert.deepEqual(mergeFrontDoorListeners({}, { mounts: { '/x': 2 }, feeds: { '/x': 1 } }), { '/x': 2 }, 'Icecast not yet counting the feed');
});

test('/_listeners is answered to this host only, GET only', () => {
  assert.deepEqual(classifyRequest(head('GET /_listeners HTTP/1.1\r\n\r\n'), { fromLoopback: true }), { kind: 'listener-counts' });
  assert.equal(classifyRequest(head('GET /_listeners HTTP/1.1\r\n\r\n'), { fromLoopback: false }).kind, 'reject');
  assert.equal(classifyRequest(head('POST /_listeners HTTP/1.1\r\nContent-Length: 0\r\n\r\n'), { fromLoopback: true }).kind, 'reject');
});
