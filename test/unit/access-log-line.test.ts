import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commonLogDate, formatAccessLogLine } from '../../src/redirectord/access/access-log-line.js';

const ended = Date.UTC(2026, 11, 4, 20, 18, 37, 400);
const session = {
  address: '203.0.113.9',
  method: 'GET',
  target: '/live.mp3',
  version: 'HTTP/1.1',
  status: 200,
  bytes: 49244,
  userAgent: 'VLC/3.0.18 LibVLC/3.0.18',
  startedAt: ended - 5_200,
  endedAt: ended,
};

test("a finished session is one line of Icecast's access.log (combined format plus seconds)", () => {
  assert.equal(
    formatAccessLogLine(session),
    '203.0.113.9 - - [04/Dec/2026:20:18:37 +0000] "GET /live.mp3 HTTP/1.1" 200 49244 "-" "VLC/3.0.18 LibVLC/3.0.18" 5',
  );
  assert.equal(commonLogDate(Date.UTC(2027, 0, 9, 3, 4, 5)), '09/Jan/2027:03:04:05 +0000');
});

test('IPv6 stays as it is; missing fields are "-"; a session that never got an answer has its error status', () => {
  const line = formatAccessLogLine({ ...session, address: '2001:db8::7', userAgent: undefined, status: 503, bytes: 0 });
  assert.match(line, /^2001:db8::7 - - \[.*\] "GET \/live\.mp3 HTTP\/1\.1" 503 0 "-" "-" 5$/);
});

test('what a listener sends cannot break the line or forge another one', () => {
  const line = formatAccessLogLine({
    ...session,
    target: '/live.mp3?x="a b"',
    userAgent: 'evil"\n203.0.113.1 - - [x] "GET / HTTP/1.1" 200 1 "-" "-" 1\\',
    referer: 'http://e.example/\r\n',
  });
  assert.equal(line.split('\n').length, 1);
  assert.match(line, /"GET \/live\.mp3\?x=\\"a b\\" HTTP\/1\.1"/);
  assert.match(line, / "evil\\"\\x0a203\.0\.113\.1 - - \[x\] \\"GET \/ HTTP\/1\.1\\" 200 1 \\"-\\" \\"-\\" 1\\\\" 5$/);
  assert.match(line, /"http:\/\/e\.example\/\\x0d\\x0a"/);
});
