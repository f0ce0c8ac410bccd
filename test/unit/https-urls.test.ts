import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeApp, mount, node, state } from '../support/http-fixtures.js';
import { publicStreamUrl, redirectTarget } from '../../src/redirectord/http/urls.js';
import { parseRequestHead } from '../../src/redirectord/http/request-head.js';

const n = node('n7', { addresses: ['192.0.2.7', '2001:db8::7'], icecastPort: 8001 });
const base = { node: n, family: 4 as const, domain: 'radio.example.org', mountPath: '/m.mp3', query: 'a=1', httpPort: 80 };

test('over HTTPS a redirect names https://<node>.DOMAIN on the HTTPS port, never an address', () => {
  assert.equal(redirectTarget({ ...base, enableIcecastProxy: true, scheme: { kind: 'https', port: 443 } }), 'https://n7.radio.example.org/_stream/m.mp3?a=1');
  assert.equal(
    redirectTarget({ ...base, family: 6, enableIcecastProxy: true, scheme: { kind: 'https', port: 8443 } }),
    'https://n7.radio.example.org:8443/_stream/m.mp3?a=1',
  );
  // Icecast's own port has no TLS: without the proxy the listener goes there in plain HTTP.
  assert.equal(redirectTarget({ ...base, enableIcecastProxy: false, scheme: { kind: 'https', port: 443 } }), 'http://192.0.2.7:8001/m.mp3?a=1');
  // Plain HTTP as before.
  assert.equal(redirectTarget({ ...base, enableIcecastProxy: true }), 'http://192.0.2.7/_stream/m.mp3?a=1');
  assert.equal(publicStreamUrl('radio.example.org', 80, '/m.mp3', { kind: 'https', port: 443 }), 'https://radio.example.org/m.mp3');
  assert.equal(publicStreamUrl('radio.example.org', 80, '/m.mp3', { kind: 'https', port: 8443 }), 'https://radio.example.org:8443/m.mp3');
  assert.equal(publicStreamUrl('radio.example.org', 8080, '/m.mp3'), 'http://radio.example.org:8080/m.mp3');
});

test("the front door's fast path answers a TLS connection with https:// and a plain one with http://", async (t) => {
  const { app, answerListener } = await makeApp(state([n], [mount('/m.mp3')]), { httpsPort: 8443 });
  t.after(() => app.close());
  const parsed = parseRequestHead(Buffer.from('GET /m.mp3 HTTP/1.1\r\nHost: radio.example.org\r\n\r\n'));
  assert.equal(parsed.kind, 'complete');
  if (parsed.kind !== 'complete') return;
  const secure = answerListener(parsed.head, '198.51.100.1', false, true)?.toString('latin1') ?? '';
  assert.match(secure, /\r\nlocation: https:\/\/n7\.radio\.example\.org:8443\/_stream\/m\.mp3\r\n/);
  const plain = answerListener(parsed.head, '198.51.100.1', false)?.toString('latin1') ?? '';
  assert.match(plain, /\r\nlocation: http:\/\/192\.0\.2\.7\/_stream\/m\.mp3\r\n/);
});

test('playlists made over HTTP keep http:// URLs', async (t) => {
  const { app } = await makeApp(state([n], [mount('/m.mp3')]), { httpsPort: 443 });
  t.after(() => app.close());
  const res = await app.inject({ url: '/m.mp3.m3u' });
  assert.match(res.body, /^http:\/\/radio\.example\.org\/m\.mp3$/m);
});
