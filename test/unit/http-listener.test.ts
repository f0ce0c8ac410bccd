import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeApp, mount, node, state } from '../support/http-fixtures.js';
import { Balancer } from '../../src/redirectord/balancer/balancer.js';
import { parsePolicy } from '../../src/redirectord/balancer/policy.js';
import { CORS_RESPONSE_HEADERS } from '../../src/redirectord/http/cors.js';
import {
  decideListenerResponse,
  encodeListenerResponse,
  isPlainListenerHead,
  type ListenerContext,
} from '../../src/redirectord/http/listener-decision.js';
import { parseRequestHead } from '../../src/redirectord/http/request-head.js';

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

test('a node without an address of the listener\'s family is never chosen (503, not a dead redirect)', async (t) => {
  const { app } = await makeApp(state([node('bare', { addresses: [] }), node('v6', { addresses: ['2001:db8::6'] })], [mount('/a.mp3')]));
  t.after(() => app.close());
  const res = await app.inject({ url: '/a.mp3', remoteAddress: '198.51.100.9' });
  assert.equal(res.statusCode, 503);
  const v6 = await app.inject({ url: '/a.mp3', remoteAddress: '2001:db8:9::1' });
  assert.equal(v6.headers['location'], 'http://[2001:db8::6]/_stream/a.mp3');
});

test('without the icecast proxy the redirect goes to the node Icecast port', async (t) => {
  const n = node('n1', { addresses: ['2001:db8::5'], icecastPort: 8123 });
  const { app } = await makeApp(state([n], [mount('/a.mp3')]), { enableIcecastProxy: false });
  t.after(() => app.close());
  const res = await app.inject({ url: '/a.mp3?x=%C3%A9', remoteAddress: '2001:db8:7::1' });
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

// The pure decision shared by the fastify route and the front door's fast path.

const ctx = (over: Partial<ListenerContext> = {}): ListenerContext => ({
  domain: 'radio.example.org',
  httpPort: 80,
  enableIcecastProxy: true,
  remoteAddress: '198.51.100.3',
  method: 'GET',
  ...over,
});
const newBalancer = () => new Balancer(parsePolicy('listeners_available,listeners_score,weighted'), () => 0.5);
const CORS_PAIRS = [
  ['access-control-allow-origin', '*'],
  ['access-control-expose-headers', String(CORS_RESPONSE_HEADERS['access-control-expose-headers'])],
];

test('decideListenerResponse: a stream is a 302 that closes its connection', () => {
  const s = state([node('n1', { addresses: ['192.0.2.7', '2001:db8::7'] })], [mount('/live/radio.mp3')]);
  const balancer = newBalancer();
  const res = decideListenerResponse('/live/radio.mp3?token=a%20b&x=1', s, balancer, ctx());
  assert.equal(res.status, 302);
  assert.deepEqual(res.headers, [
    ...CORS_PAIRS,
    ['location', 'http://192.0.2.7/_stream/live/radio.mp3?token=a%20b&x=1'],
    ['cache-control', 'no-cache'],
    ['connection', 'close'],
  ]);
  assert.equal(res.body, '');
  assert.deepEqual(res.outcome, { kind: 'redirect', mount: '/live/radio.mp3', node: 'n1' });
  assert.equal(balancer.pendingListeners('n1'), 1, 'the redirect counts as a pending listener');
  const v6 = decideListenerResponse('/live/radio.mp3', s, balancer, ctx({ remoteAddress: '2001:db8::1', httpPort: 8080 }));
  assert.equal(v6.headers.find(([n]) => n === 'location')?.[1], 'http://[2001:db8::7]:8080/_stream/live/radio.mp3');
  const direct = decideListenerResponse('/live/radio.mp3?a=<b>', s, balancer, ctx({ enableIcecastProxy: false }));
  assert.equal(direct.headers.find(([n]) => n === 'location')?.[1], 'http://192.0.2.7:8000/live/radio.mp3?a=%3Cb%3E');
});

test('decideListenerResponse: 503 with Retry-After, 404, playlists', () => {
  const balancer = newBalancer();
  const full = decideListenerResponse('/a.mp3', state([node('n1', { listeners: 100 })], [mount('/a.mp3')]), balancer, ctx());
  assert.equal(full.status, 503);
  assert.deepEqual(full.headers, [
    ...CORS_PAIRS,
    ['retry-after', '5'],
    ['content-type', 'text/plain; charset=utf-8'],
    ['cache-control', 'no-cache'],
  ]);
  assert.equal(full.body, 'No server can take this listener now, retry shortly\n');
  assert.deepEqual(full.outcome, { kind: 'unavailable', mount: '/a.mp3', nodes: 1 });
  assert.equal(balancer.pendingListeners('n1'), 0);

  const s = state([node('n1')], [mount('/a.mp3')]);
  for (const url of ['/b.mp3', '/%zz', '/a.mp3/', '/b.mp3.m3u']) {
    const res = decideListenerResponse(url, s, balancer, ctx());
    assert.equal(res.status, 404, url);
    assert.equal(res.body, 'No such stream\n');
    assert.deepEqual(res.outcome, { kind: 'not_found' });
  }
  const pls = decideListenerResponse('/a.mp3.pls?x=1', s, balancer, ctx({ httpPort: 8080 }));
  assert.equal(pls.status, 200);
  assert.deepEqual(pls.headers, [
    ...CORS_PAIRS,
    ['content-type', 'audio/x-scpls'],
    ['cache-control', 'no-cache'],
    ['content-disposition', 'inline; filename="a.mp3.pls"'],
  ]);
  assert.match(pls.body, /\nFile1=http:\/\/radio\.example\.org:8080\/a\.mp3\n/);
  assert.deepEqual(pls.outcome, { kind: 'playlist', mount: '/a.mp3', format: 'pls' });
});

test('the fastify route answers exactly what the pure decision says', async (t) => {
  const s = state([node('n1', { addresses: ['192.0.2.7'] })], [mount('/a.mp3'), mount('/odd.m3u')]);
  const { app } = await makeApp(s);
  t.after(() => app.close());
  for (const url of ['/a.mp3?x=1', '/odd.m3u', '/a.mp3.m3u', '/a.mp3.xspf', '/nope.mp3']) {
    const want = decideListenerResponse(url, s, newBalancer(), ctx());
    const got = await app.inject({ url, remoteAddress: '198.51.100.3' });
    assert.equal(got.statusCode, want.status, url);
    assert.equal(got.body, want.body, url);
    const names = Object.keys(got.headers).filter((n) => !['date', 'connection', 'keep-alive', 'content-length'].includes(n));
    assert.deepEqual(names, want.headers.map(([n]) => n).filter((n) => n !== 'connection'), url);
    for (const [n, v] of want.headers) assert.equal(got.headers[n], v, `${url} ${n}`);
  }
});

test('encodeListenerResponse writes what node:http writes for a closing answer', () => {
  const date = 'Sun, 22 Nov 2026 03:13:24 GMT';
  const redirect = decideListenerResponse('/a.mp3', state([node('n1', { addresses: ['192.0.2.7'] })], [mount('/a.mp3')]), newBalancer(), ctx());
  const bytes = encodeListenerResponse(redirect, { head: false, date }).toString('latin1');
  assert.equal(
    bytes,
    'HTTP/1.1 302 Found\r\n' +
      'access-control-allow-origin: *\r\n' +
      `access-control-expose-headers: ${CORS_RESPONSE_HEADERS['access-control-expose-headers']}\r\n` +
      'location: http://192.0.2.7/_stream/a.mp3\r\ncache-control: no-cache\r\nconnection: close\r\n' +
      `content-length: 0\r\nDate: ${date}\r\n\r\n`,
  );
  const kept = encodeListenerResponse(redirect, { head: false, date, keepAlive: true }).toString('latin1');
  assert.equal(kept, bytes.replace('connection: close', 'connection: keep-alive'));
  const notFound = decideListenerResponse('/b.mp3', state([], []), newBalancer(), ctx());
  const get = encodeListenerResponse(notFound, { head: false, date }).toString('utf8');
  assert.match(get, /\r\ncontent-length: 15\r\nDate: [^\r]+\r\nConnection: close\r\n\r\nNo such stream\n$/);
  const keptNotFound = encodeListenerResponse(notFound, { head: false, date, keepAlive: true }).toString('utf8');
  assert.equal(keptNotFound, get.replace('Connection: close', 'Connection: keep-alive'));
  const head = encodeListenerResponse(notFound, { head: true, date }).toString('utf8');
  assert.equal(head, get.slice(0, -'No such stream\n'.length), 'HEAD: same head, no body');
  const utf8 = encodeListenerResponse({ ...notFound, body: 'é\n' }, { head: false, date });
  assert.match(utf8.toString('utf8'), /content-length: 3\r\n[^]*\r\n\r\né\n$/);
});

test('isPlainListenerHead accepts only heads node:http reads as a plain bodiless GET/HEAD', () => {
  const check = (raw: string) => {
    const buf = Buffer.from(raw, 'latin1');
    const parsed = parseRequestHead(buf);
    return parsed.kind === 'complete' && isPlainListenerHead(buf, parsed.head);
  };
  for (const ok of [
    'GET /a.mp3 HTTP/1.1\r\nHost: x\r\n\r\n',
    'HEAD /a.mp3?x=%20&y=<1> HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n',
    'GET /a.mp3 HTTP/1.0\r\n\r\n',
    'GET /a.mp3 HTTP/1.1\r\nHost: x\r\nUser-Agent: caf\xe9\tbar\r\n\r\nGET /pipelined HTTP/1.1\r\n\r\n',
  ]) {
    assert.equal(check(ok), true, JSON.stringify(ok));
  }
  for (const bad of [
    'POST /a.mp3 HTTP/1.1\r\nHost: x\r\n\r\n',
    'get /a.mp3 HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /a.mp3 HTTP/1.1\r\n\r\n', // no Host
    'GET /a.mp3 HTTP/2.0\r\nHost: x\r\n\r\n',
    'GET /a.mp3 ICE/1.0\r\nHost: x\r\n\r\n',
    'GET /a.mp3\r\nHost: x\r\n\r\n',
    'GET /a%2Emp3 HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET http://x/a.mp3 HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /a.mp3?t=\xe9 HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /a.mp3 HTTP/1.1\nHost: x\n\n',
    'GET /a.mp3 HTTP/1.1\r\nHost: x\n\r\n',
    '\r\nGET /a.mp3 HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /a.mp3 HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n',
    'GET /a.mp3 HTTP/1.1\r\nHost: x\r\nX: a\x7fb\r\n\r\n',
    'GET /a.mp3 HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n',
    'GET /a.mp3 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n',
    'GET /a.mp3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n',
    'GET /a.mp3 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n',
    'GET /a.mp3 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n',
  ]) {
    assert.equal(check(bad), false, JSON.stringify(bad));
  }
});

test('the front door answer: 302s only, once, never for a path another route owns', async (t) => {
  const balancer = newBalancer();
  const s = state([node('n1', { addresses: ['192.0.2.7'] })], [mount('/a.mp3'), mount('/status.json')]);
  const { app, answerListener, metrics, setState } = await makeApp(s, { balancer });
  t.after(() => app.close());
  const head = (raw: string) => {
    const parsed = parseRequestHead(Buffer.from(raw, 'latin1'));
    assert.equal(parsed.kind, 'complete');
    return (parsed as Extract<typeof parsed, { kind: 'complete' }>).head;
  };
  const get = (target: string, method = 'GET') => head(`${method} ${target} HTTP/1.1\r\nHost: x\r\n\r\n`);

  const answer = answerListener(get('/a.mp3?q=1'), '198.51.100.3', false);
  assert.ok(answer);
  assert.match(answer.toString('latin1'), /^HTTP\/1\.1 302 Found\r\n[^]*\r\nlocation: http:\/\/192\.0\.2\.7\/_stream\/a\.mp3\?q=1\r\n/);
  assert.match(answer.toString('latin1'), /\r\nconnection: close\r\n/);
  const kept = answerListener(get('/a.mp3'), '198.51.100.3', true)?.toString('latin1');
  assert.match(kept ?? '', /\r\nconnection: keep-alive\r\n/);
  assert.doesNotMatch(kept ?? '', /close/i);
  assert.match(answer.toString('latin1'), /\r\nDate: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT\r\n\r\n$/);
  assert.equal(metrics.counts.get('http.redirect.n1'), 2);
  assert.equal(balancer.pendingListeners('n1'), 2);
  const viaHead = answerListener(get('/a.mp3', 'HEAD'), undefined, false);
  assert.ok(viaHead?.toString('latin1').endsWith('\r\n\r\n'));

  // Left to fastify, with nothing recorded: its own route would record them.
  for (const target of ['/', '/status.json', '/a.mp3.m3u', '/b.mp3', '/a%2Emp3', '/_stream/a.mp3']) {
    assert.equal(answerListener(get(target), '198.51.100.3', true), undefined, target);
  }
  assert.equal(answerListener(get('/a.mp3', 'OPTIONS'), '198.51.100.3', true), undefined);
  assert.equal(balancer.pendingListeners('n1'), 2, 'only the two GET redirects were counted (a HEAD is no listener)');
  setState(state([node('n1', { listeners: 100 })], [mount('/a.mp3')]));
  assert.equal(answerListener(get('/a.mp3'), '198.51.100.3', true), undefined, '503 is fastify\'s');
  assert.equal(metrics.counts.get('http.redirect.n1'), 3);
  assert.equal(metrics.counts.get('http.unavailable'), undefined);
  assert.equal(metrics.counts.get('http.not_found'), undefined);
});
