import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeApp, mount, node, state } from '../support/http-fixtures.js';

const CORS_EXPOSED = ['icy-metaint', 'icy-name', 'icy-description', 'icy-genre', 'icy-br', 'icy-url', 'icy-pub'];

function assertCors(headers: Record<string, unknown>): void {
  assert.equal(headers['access-control-allow-origin'], '*');
  const exposed = String(headers['access-control-expose-headers']).toLowerCase();
  for (const h of CORS_EXPOSED) assert.ok(exposed.includes(h), `${h} not exposed: ${exposed}`);
}

test('a listener is redirected to the chosen node /_stream path, query string kept', async (t) => {
  const { app, metrics } = await makeApp(state([node('n1', { addresses: ['192.0.2.7'] })], [mount('/live/radio.mp3')]));
  t.after(() => app.close());
  const res = await app.inject({ method: 'GET', url: '/live/radio.mp3?token=a%20b&x=1', remoteAddress: '198.51.100.3' });
  assert.equal(res.statusCode, 302);
  assert.equal(res.headers['location'], 'http://192.0.2.7/_stream/live/radio.mp3?token=a%20b&x=1');
  assert.equal(res.headers['cache-control'], 'no-cache');
  assertCors(res.headers);
  assert.equal(metrics.counts.get('http.redirect.n1'), 1);

  const head = await app.inject({ method: 'HEAD', url: '/live/radio.mp3' });
  assert.equal(head.statusCode, 302);
  assert.equal(head.headers['location'], 'http://192.0.2.7/_stream/live/radio.mp3');
});

test('non-default HTTP port, IPv6 brackets and client-family preference', async (t) => {
  const dual = node('dual', { addresses: ['192.0.2.8', '2001:db8::8'] });
  const { app } = await makeApp(state([dual], [mount('/a.mp3')]), { httpPort: 8080 });
  t.after(() => app.close());
  const v6 = await app.inject({ url: '/a.mp3', remoteAddress: '2001:db8::99' });
  assert.equal(v6.headers['location'], 'http://[2001:db8::8]:8080/_stream/a.mp3');
  const v4 = await app.inject({ url: '/a.mp3', remoteAddress: '198.51.100.3' });
  assert.equal(v4.headers['location'], 'http://192.0.2.8:8080/_stream/a.mp3');
  const mapped = await app.inject({ url: '/a.mp3', remoteAddress: '::ffff:198.51.100.3' });
  assert.equal(mapped.headers['location'], 'http://192.0.2.8:8080/_stream/a.mp3');
});

test('a node without addresses is reached by its name in the zone', async (t) => {
  const { app } = await makeApp(state([node('bare', { addresses: [] })], [mount('/a.mp3')]));
  t.after(() => app.close());
  const res = await app.inject({ url: '/a.mp3' });
  assert.equal(res.headers['location'], 'http://bare.radio.example.org/_stream/a.mp3');
});

test('without the icecast proxy the redirect goes to the node Icecast port', async (t) => {
  const n = node('n1', { addresses: ['2001:db8::5'], icecastPort: 8123 });
  const { app } = await makeApp(state([n], [mount('/a.mp3')]), { enableIcecastProxy: false });
  t.after(() => app.close());
  const res = await app.inject({ url: '/a.mp3?x=%C3%A9' });
  assert.equal(res.statusCode, 302);
  assert.equal(res.headers['location'], 'http://[2001:db8::5]:8123/a.mp3?x=%C3%A9');
});

test('the balancer spreads redirects and never over a full node', async (t) => {
  const nodes = [node('full', { listeners: 100, addresses: ['192.0.2.1'] }), node('free', { addresses: ['192.0.2.2'] })];
  const { app } = await makeApp(state(nodes, [mount('/a.mp3')]));
  t.after(() => app.close());
  for (let i = 0; i < 20; i++) {
    const res = await app.inject({ url: '/a.mp3' });
    assert.equal(res.headers['location'], 'http://192.0.2.2/_stream/a.mp3');
  }
});

test('503 with Retry-After when no node can take the listener', async (t) => {
  const { app, metrics, setState } = await makeApp(state([node('n1', { listeners: 100 })], [mount('/a.mp3')]));
  t.after(() => app.close());
  const res = await app.inject({ url: '/a.mp3' });
  assert.equal(res.statusCode, 503);
  assert.ok(Number(res.headers['retry-after']) > 0);
  assert.match(String(res.headers['content-type']), /^text\/plain/);
  assert.ok(res.body.length > 0 && res.body.length < 200);
  assertCors(res.headers);
  setState(state([], [mount('/a.mp3')]));
  assert.equal((await app.inject({ url: '/a.mp3' })).statusCode, 503);
  assert.equal(metrics.counts.get('http.unavailable'), 2);
});

test('unknown mounts and invalid paths are 404, never an error', async (t) => {
  const { app, metrics } = await makeApp(state([node('n1')], [mount('/a.mp3')]));
  t.after(() => app.close());
  const paths = [
    '/b.mp3',
    '/a.mp3/',
    '/a.mp3.m3u8',
    '/%2e%2e/etc/passwd',
    '//a.mp3',
    '/a%00.mp3',
    '/%zz',
    '/<script>.mp3',
    `/${'a'.repeat(500)}.mp3`,
    '/b.mp3.m3u',
    '/_x.m3u',
    '/favicon.ico',
  ];
  for (const url of paths) {
    const res = await app.inject({ url });
    assert.ok(res.statusCode === 404 || res.statusCode === 400, `${url}: ${res.statusCode}`);
    assert.ok(!res.body.includes('<script>'), `${url} echoed the path`);
  }
  assert.ok((metrics.counts.get('http.not_found') ?? 0) >= 10);
  // Other methods on stream URLs are not ours (sources never reach this server).
  assert.equal((await app.inject({ method: 'POST', url: '/a.mp3' })).statusCode, 404);
});

test('a /_stream request on a connection already handed to the app is sent back on a new connection', async () => {
  const { app } = await makeApp(state([node('n1')], [mount('/a.mp3')]));
  const res = await app.inject({ url: '/_stream/a.mp3?x=1' });
  assert.equal(res.statusCode, 307);
  assert.equal(res.headers['location'], '/_stream/a.mp3?x=1');
  assert.equal(res.headers['connection'], 'close');
  const redirect = await app.inject({ url: '/a.mp3' });
  assert.equal(redirect.statusCode, 302);
  assert.equal(redirect.headers['connection'], 'close', 'the follow-up must not reuse this connection');

  // Without the proxy nothing answers /_stream on port 80, and nothing may loop.
  const { app: direct } = await makeApp(state([node('n1')], [mount('/a.mp3')]), { enableIcecastProxy: false });
  assert.equal((await direct.inject({ url: '/_stream/a.mp3' })).statusCode, 404);
});

test('a 200-character mount path still resolves', async (t) => {
  const long = `/${'x'.repeat(196)}.mp3`;
  const { app } = await makeApp(state([node('n1')], [mount(long)]));
  t.after(() => app.close());
  assert.equal((await app.inject({ url: long })).statusCode, 302);
  assert.equal((await app.inject({ url: `${long}.m3u` })).statusCode, 200);
});

test('OPTIONS preflight is answered 204 with CORS headers', async (t) => {
  const { app } = await makeApp(state([node('n1')], [mount('/a.mp3')]));
  t.after(() => app.close());
  const res = await app.inject({
    method: 'OPTIONS',
    url: '/a.mp3',
    headers: { origin: 'http://player.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'icy-metadata,range' },
  });
  assert.equal(res.statusCode, 204);
  assertCors(res.headers);
  assert.deepEqual(String(res.headers['access-control-allow-methods']).split(/,\s*/).sort(), ['GET', 'HEAD', 'OPTIONS']);
  const allowed = String(res.headers['access-control-allow-headers']).toLowerCase();
  assert.ok(allowed.includes('icy-metadata') && allowed.includes('range'), allowed);
});

test('playlists point at the public stream URL with the right content types', async (t) => {
  const { app, metrics } = await makeApp(state([node('n1')], [mount('/live/radio.mp3')]));
  t.after(() => app.close());
  const m3u = await app.inject({ url: '/live/radio.mp3.m3u' });
  assert.equal(m3u.statusCode, 200);
  assert.match(String(m3u.headers['content-type']), /^audio\/x-mpegurl/);
  assertCors(m3u.headers);
  const lines = m3u.body.trim().split('\n');
  assert.equal(lines[0], '#EXTM3U');
  assert.equal(lines.at(-1), 'http://radio.example.org/live/radio.mp3');

  const pls = await app.inject({ url: '/live/radio.mp3.pls' });
  assert.match(String(pls.headers['content-type']), /^audio\/x-scpls/);
  assert.match(pls.body, /^\[playlist\]\nNumberOfEntries=1\nFile1=http:\/\/radio\.example\.org\/live\/radio\.mp3\n/);
  assert.match(pls.body, /Version=2/);

  const xspf = await app.inject({ url: '/live/radio.mp3.xspf' });
  assert.match(String(xspf.headers['content-type']), /^application\/xspf\+xml/);
  assert.match(xspf.body, /<location>http:\/\/radio\.example\.org\/live\/radio\.mp3<\/location>/);
  assert.match(xspf.body, /^<\?xml version="1.0" encoding="UTF-8"\?>/);

  const head = await app.inject({ method: 'HEAD', url: '/live/radio.mp3.m3u' });
  assert.equal(head.statusCode, 200);
  assert.equal(head.body, '');
  assert.equal(metrics.counts.get('http.playlist.m3u'), 2);
  assert.equal(metrics.counts.get('http.playlist.pls'), 1);
  assert.equal(metrics.counts.get('http.playlist.xspf'), 1);
});

test('playlist URLs carry the port when redirectord is not on 80', async (t) => {
  const { app } = await makeApp(state([node('n1')], [mount('/a.mp3')]), { httpPort: 8080, domain: 'r.test' });
  t.after(() => app.close());
  assert.match((await app.inject({ url: '/a.mp3.m3u' })).body, /\nhttp:\/\/r\.test:8080\/a\.mp3\n$/);
});

test('a mount whose own name ends in .m3u is a stream, not a playlist', async (t) => {
  const { app } = await makeApp(state([node('n1', { addresses: ['192.0.2.3'] })], [mount('/odd.m3u'), mount('/odd')]));
  t.after(() => app.close());
  const res = await app.inject({ url: '/odd.m3u' });
  assert.equal(res.statusCode, 302);
  assert.equal(res.headers['location'], 'http://192.0.2.3/_stream/odd.m3u');
});
