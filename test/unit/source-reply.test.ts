import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRequestHead, type RequestHead } from '../../src/redirectord/http/request-head.js';
import {
  isHoldableSourceRequest,
  isResumableSourceType,
  readSourceReply,
} from '../../src/redirectord/http/source-reply.js';

function head(text: string): RequestHead {
  const p = parseRequestHead(Buffer.from(text));
  assert.equal(p.kind, 'complete', text);
  return (p as { head: RequestHead }).head;
}

const b = (s: string) => Buffer.from(s, 'latin1');

test('only frame-synced formats resume mid-stream', () => {
  assert.equal(isResumableSourceType('audio/mpeg'), true);
  assert.equal(isResumableSourceType('Audio/MPEG; charset=x'), true);
  assert.equal(isResumableSourceType('audio/aac'), true);
  assert.equal(isResumableSourceType('audio/aacp'), true);
  for (const t of ['application/ogg', 'audio/ogg', 'audio/opus', 'audio/webm', 'video/webm', '', undefined]) {
    assert.equal(isResumableSourceType(t), false, String(t));
  }
});

test('holdable: SOURCE and PUT with a resumable type; never probes, admin requests or Ogg', () => {
  // darkice: bare LF line ends and "Content-type".
  assert.equal(isHoldableSourceRequest(head('SOURCE /a.mp3 HTTP/1.0\nContent-type: audio/mpeg\nice-name: x\r\n\r\n')), true);
  assert.equal(
    isHoldableSourceRequest(head('PUT /a.aac HTTP/1.1\r\nExpect: 100-continue\r\nContent-Type: audio/aacp\r\n\r\n')),
    true,
  );
  assert.equal(isHoldableSourceRequest(head('PUT /a.ogg HTTP/1.1\r\nContent-Type: application/ogg\r\n\r\n')), false);
  assert.equal(isHoldableSourceRequest(head('SOURCE /a.mp3 HTTP/1.0\r\n\r\n')), false);
  assert.equal(isHoldableSourceRequest(head('OPTIONS * HTTP/1.1\r\nContent-Type: audio/mpeg\r\n\r\n')), false);
  assert.equal(
    isHoldableSourceRequest(head('GET /admin/metadata?mode=updinfo HTTP/1.0\r\nContent-Type: audio/mpeg\r\n\r\n')),
    false,
  );
});

test('a plain 200 (SOURCE) is final at once', () => {
  const r = readSourceReply(b('HTTP/1.0 200 OK\r\n\r\n'));
  assert.deepEqual(r, { kind: 'final', status: 200, end: 19 });
});

test('100 Continue is skipped; the 200 behind it decides, in one read or split anywhere', () => {
  const whole = b('HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\nHTTP/1.0 200 OK\r\n\r\n');
  assert.deepEqual(readSourceReply(whole), { kind: 'final', status: 200, end: whole.length });
  for (let cut = 1; cut < whole.length; cut++) {
    assert.deepEqual(readSourceReply(whole.subarray(0, cut)), { kind: 'incomplete' }, `cut ${cut}`);
  }
  // Bytes after the final head (none normally) are not part of it.
  const withExtra = Buffer.concat([whole, b('junk')]);
  assert.deepEqual(readSourceReply(withExtra), { kind: 'final', status: 200, end: whole.length });
});

test('refusals are final: 401, 403 (mount in use), 404 (mount not configured yet)', () => {
  const unauth = b('HTTP/1.0 401 Authentication Required\r\nWWW-Authenticate: Basic realm="Icecast2 Server"\r\n\r\nYou need to authenticate\r\n');
  const r = readSourceReply(unauth);
  assert.equal(r.kind, 'final');
  assert.equal((r as { status: number }).status, 401);
  assert.equal((readSourceReply(b('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 403 Forbidden\r\n\r\n')) as { status: number }).status, 403);
  assert.equal((readSourceReply(b('HTTP/1.0 404 File Not Found\r\n\r\n')) as { status: number }).status, 404);
});

test('garbage and endless heads are invalid rather than waited for', () => {
  assert.equal(readSourceReply(b('ICY what\r\n\r\n')).kind, 'invalid');
  assert.equal(readSourceReply(b(`HTTP/1.0 200 OK\r\nX: ${'a'.repeat(100)}`), 64).kind, 'invalid');
  assert.equal(readSourceReply(b('HTTP/1.0 200 OK\r\nX: y')).kind, 'incomplete');
});
