import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mount, node } from '../support/http-fixtures.js';
import { resolveListenerRequest } from '../../src/redirectord/http/listener-path.js';
import { clientFamily, nodeHost, redirectTarget, safeQuery, urlHost } from '../../src/redirectord/http/urls.js';
import { m3u, pls, xspf } from '../../src/redirectord/http/playlists.js';
import { escapeHtml } from '../../src/redirectord/http/escape.js';
import { escapeXml } from '../../src/common/xml-escape.js';
import { CORS_PREFLIGHT_HEADERS, CORS_RESPONSE_HEADERS } from '../../src/redirectord/http/cors.js';

const mounts = new Map([mount('/a.mp3'), mount('/dir/b.ogg')].map((m) => [m.path, m]));

test('request targets resolve to streams, playlists or unknown, never throw', () => {
  const stream = resolveListenerRequest('/dir/b.ogg?x=1&y', mounts);
  assert.equal(stream.kind, 'stream');
  assert.equal(stream.kind === 'stream' && stream.query, 'x=1&y');
  const pl = resolveListenerRequest('/a.mp3.xspf?ignored', mounts);
  assert.equal(pl.kind === 'playlist' && pl.format.extension, 'xspf');
  assert.equal(resolveListenerRequest('/a%2Emp3', mounts).kind, 'stream');
  for (const raw of ['/../a.mp3', '/x/../a.mp3', '/./a.mp3', '/%2e%2e/a.mp3', '/%', '/%E0%A4%A', '', '?', '/_stream/a.mp3', '/a.mp3/.m3u', '/.m3u', '/dir/', '/dir/b.ogg/']) {
    assert.equal(resolveListenerRequest(raw, mounts).kind, 'unknown', raw);
  }
});

test('client family: IPv4-mapped addresses count as IPv4', () => {
  assert.equal(clientFamily('127.0.0.1'), 4);
  assert.equal(clientFamily('::1'), 6);
  assert.equal(clientFamily('::ffff:10.1.2.3'), 4);
  assert.equal(clientFamily(undefined), 4);
});

test('node host preference and URL building', () => {
  const n = node('n', { addresses: ['2001:db8::2', '192.0.2.2'], icecastPort: 8001 });
  assert.equal(nodeHost(n, 4, 'd.test'), '192.0.2.2');
  assert.equal(nodeHost(n, 6, 'd.test'), '2001:db8::2');
  assert.equal(nodeHost(node('v4', { addresses: ['192.0.2.2'] }), 6, 'd.test'), '192.0.2.2');
  assert.equal(urlHost('::1'), '[::1]');
  const base = { node: n, family: 6 as const, domain: 'd.test', mountPath: '/m.mp3', query: '', httpPort: 80 };
  assert.equal(redirectTarget({ ...base, enableIcecastProxy: true }), 'http://[2001:db8::2]/_stream/m.mp3');
  assert.equal(redirectTarget({ ...base, enableIcecastProxy: false, query: 'a=1' }), 'http://[2001:db8::2]:8001/m.mp3?a=1');
});

test('query strings are kept byte for byte but made header-safe', () => {
  assert.equal(safeQuery('a=1&b=%20x'), 'a=1&b=%20x');
  // Node gives the request line as latin1: UTF-8 "é" arrives as two chars.
  assert.equal(safeQuery('t=\xc3\xa9 "<x>"'), 't=%C3%A9%20%22%3Cx%3E%22');
});

test('playlist renderers', () => {
  assert.equal(m3u.render('http://d/a.mp3', 'd/a.mp3'), '#EXTM3U\n#EXTINF:-1,d/a.mp3\nhttp://d/a.mp3\n');
  assert.match(pls.render('http://d/a.mp3', 'x\ny'), /Title1=x y\n/);
  const x = xspf.render('http://d/a.mp3?a=1&b=2', 'T<&>');
  assert.match(x, /<location>http:\/\/d\/a\.mp3\?a=1&amp;b=2<\/location><title>T&lt;&amp;&gt;<\/title>/);
});

test('escaping', () => {
  assert.equal(escapeHtml(`<a href="x" title='y'>&</a>`), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
  assert.equal(escapeXml('a\x00b\x1fc\x7fd'), 'abcd', 'forbidden and discouraged control characters are removed');
  assert.equal(escapeXml('t\tl\nc\r'), 't\tl\nc\r', 'tab, LF and CR are kept');
  assert.equal(escapeXml(`<a href="x">&'`), '&lt;a href=&quot;x&quot;&gt;&amp;&apos;');
});

test('CORS header sets', () => {
  assert.equal(CORS_RESPONSE_HEADERS['access-control-allow-origin'], '*');
  assert.match(CORS_RESPONSE_HEADERS['access-control-expose-headers']!, /icy-metaint.*icy-pub/);
  assert.match(CORS_PREFLIGHT_HEADERS['access-control-allow-headers']!, /Icy-MetaData, Range/);
  assert.equal(CORS_PREFLIGHT_HEADERS['access-control-allow-methods'], 'GET, HEAD, OPTIONS');
  assert.ok(Object.isFrozen(CORS_PREFLIGHT_HEADERS));
});
