import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SECRET, makeApp, mount, node, state } from '../support/http-fixtures.js';
import { buildStatusView } from '../../src/redirectord/http/status-view.js';
import { publicMount } from '../../src/coordination/mount.js';
import { renderStatusPage } from '../../src/redirectord/http/status-page.js';

const RELAY_SECRET = 'relay-Secret-77';

function richState() {
  return state(
    [
      node('alpha', {
        addresses: ['192.0.2.1', '2001:db8::1'], listeners: 40, maxListeners: 100, bandwidthKbps: 5120, mounts: { '/live.mp3': 30, '/low.mp3': 10 },
        onAir: { '/live.mp3': { since: Date.UTC(2026, 11, 4, 20, 0, 0), title: 'Night <Jazz>', contentType: 'audio/mpeg', bitrateKbps: 128 } },
        version: '1.2.0',
      }),
      // A non-master's on-air view is not the cluster's: only the master's Icecast has the sources.
      node('beta', { addresses: ['192.0.2.2'], icecastOk: false, listeners: 5, maxListeners: 0, mounts: { '/live.mp3': 5 }, onAir: { '/low.mp3': { since: 1 } }, draining: true }),
    ],
    [
      mount('/live.mp3', { fallback: '/backup.mp3' }),
      mount('/backup.mp3', { relayUrl: `http://feed:${RELAY_SECRET}@relay.example.net:8000/backup.mp3` }),
      mount('/low.mp3', { transcoding: { source: '/live.mp3', codec: 'opus', bitrate: 48, samplerate: 48000, channels: 2 } }),
    ],
  );
}

test('the status page shows nodes, master, mounts, listener totals and links, and no password', async (t) => {
  const { app } = await makeApp(richState());
  t.after(() => app.close());
  const res = await app.inject({ url: '/' });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/html; charset=utf-8/);
  const html = res.body;
  assert.ok(!html.includes(SECRET), 'source password leaked');
  assert.ok(!html.includes(RELAY_SECRET), 'relay credentials leaked');
  assert.match(html, /<meta name="viewport"/);
  assert.ok(!/<script/i.test(html));
  assert.match(html, /data-node="alpha">[^]*?<span class="tag">master<\/span>/);
  assert.match(html, /data-node="beta">[^]*?Icecast down/);
  assert.match(html, /40 \/ 100 <span class="muted">\(40 %\)/);
  assert.match(html, /5 \/ unlimited/);
  // Cluster-wide listeners of /live.mp3: 30 on alpha + 5 on beta.
  assert.match(html, /data-mount="\/live\.mp3"><td><a href="\/live\.mp3">\/live\.mp3<\/a>[^]*?<td>35<\/td>/);
  assert.match(html, /<a href="\/live\.mp3\.m3u">m3u<\/a>/);
  assert.match(html, /fallback \/backup\.mp3/);
  assert.match(html, /relay of http:\/\/relay\.example\.net:8000\/backup\.mp3/);
  assert.match(html, /transcoded from \/live\.mp3: opus 48 kbit\/s/);
  assert.ok(!html.includes('id="disconnected"'));
  assert.match(html, /data-mount="\/live\.mp3">[^]*?on air<\/span><div class="muted">since 2026-12-04T20:00:00\.000Z · audio\/mpeg, 128 kbit\/s<\/div><div class="title">Night &lt;Jazz&gt;<\/div>/);
  assert.match(html, /data-mount="\/low\.mp3">[^]*?off air/);
  assert.match(html, /data-node="beta">[^]*?draining/);
  assert.match(html, /id="mixed-versions">Mixed versions: 1\.2\.0, unknown/);
});

test('a banner says when the view is disconnected from etcd', async (t) => {
  const { app } = await makeApp(state([node('alpha')], [], { connected: false }));
  t.after(() => app.close());
  const html = (await app.inject({ url: '/' })).body;
  assert.match(html, /id="disconnected"/);
  assert.match(html, /No mounts configured/);
});

test('node names and mount paths cannot inject HTML', () => {
  const evilNode = '<img src=x onerror=alert(1)>';
  const evilPath = '/"><script>alert(1)</script>.mp3';
  const s = state([node(evilNode, { addresses: ['"><b>'] })], [mount(evilPath, { fallback: "/'onmouseover='x.mp3" })]);
  const html = renderStatusPage(buildStatusView(s, { domain: 'r<i>.test', nodeName: '<u>me</u>', httpPort: 80, now: Date.now() }));
  for (const raw of [evilNode, '<script>', '"><b>', "'onmouseover='", '<i>', '<u>']) {
    assert.ok(!html.includes(raw), `unescaped ${raw}`);
  }
  assert.ok(html.includes('&lt;img src=x onerror=alert(1)&gt;'));
  assert.ok(html.includes('/&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;.mp3'));
});

test('status.json has the documented shape and no secret', async (t) => {
  const { app } = await makeApp(richState(), { domain: 'radio.test', nodeName: 'alpha' });
  t.after(() => app.close());
  const res = await app.inject({ url: '/status.json' });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  assert.equal(res.headers['access-control-allow-origin'], '*');
  assert.ok(!res.body.includes(SECRET) && !res.body.includes(RELAY_SECRET));
  assert.ok(!res.body.includes('"password"'));
  const v = JSON.parse(res.body);
  assert.equal(v.domain, 'radio.test');
  assert.equal(v.servedBy, 'alpha');
  assert.equal(v.connected, true);
  assert.deepEqual(v.master, { name: 'alpha', addresses: ['192.0.2.1', '2001:db8::1'] });
  assert.deepEqual(v.totals, { nodes: 2, mounts: 3, listeners: 45, bandwidthKbps: 5120 });
  assert.deepEqual(v.versions, ['1.2.0', 'unknown']);
  assert.deepEqual(
    v.nodes.map((n: { draining: boolean; version: string }) => [n.draining, n.version]),
    [
      [false, '1.2.0'],
      [true, 'unknown'],
    ],
  );
  assert.deepEqual(
    v.nodes.map((n: { name: string; master: boolean; icecastOk: boolean; utilization: number | null }) => [n.name, n.master, n.icecastOk, n.utilization]),
    [
      ['alpha', true, true, 0.4],
      ['beta', false, false, null],
    ],
  );
  assert.equal(typeof v.nodes[0].reportedAt, 'string');
  const live = v.mounts.find((m: { path: string }) => m.path === '/live.mp3');
  assert.deepEqual(live, {
    path: '/live.mp3',
    username: 'source',
    fallback: '/backup.mp3',
    listeners: 35,
    onAir: true,
    sourceSince: '2026-12-04T20:00:00.000Z',
    title: 'Night <Jazz>',
    contentType: 'audio/mpeg',
    bitrateKbps: 128,
    streamUrl: 'http://radio.test/live.mp3',
    playlists: { m3u: 'http://radio.test/live.mp3.m3u', pls: 'http://radio.test/live.mp3.pls', xspf: 'http://radio.test/live.mp3.xspf' },
  });
  const relay = v.mounts.find((m: { path: string }) => m.path === '/backup.mp3');
  assert.equal(relay.relayUrl, 'http://relay.example.net:8000/backup.mp3');
  const low = v.mounts.find((m: { path: string }) => m.path === '/low.mp3');
  assert.equal(low.transcoding.codec, 'opus');
  assert.equal(low.listeners, 10);
  assert.equal(low.onAir, false, 'only the master says what is on air');
  assert.equal(low.title, undefined);
});

test('relay URLs lose their credentials; unparseable ones are hidden', () => {
  const relayUrl = (url: string) => publicMount({ path: '/r.mp3', username: 'source', password: 'x', relayUrl: url }).relayUrl;
  assert.equal(relayUrl('http://u:p@h.example/x'), 'http://h.example/x');
  assert.equal(relayUrl('http://h.example/x'), 'http://h.example/x');
  assert.equal(relayUrl('not a url u:p@'), '');
});

test('an elected master that has not reported yet still shows; no nodes is said plainly', () => {
  const s = state([], [], { master: { name: 'gamma', addresses: ['192.0.2.9'], icecastPort: 8000 } });
  const v = buildStatusView(s, { domain: 'r.test', nodeName: 'n', httpPort: 80, now: 0 });
  assert.deepEqual(v.master, { name: 'gamma', addresses: ['192.0.2.9'] });
  const html = renderStatusPage(v);
  assert.match(html, /Master: <strong>gamma<\/strong>/);
  assert.match(html, /No live nodes/);
});

test('served over HTTPS, the status links are https:// (a page must not send its reader to plain HTTP)', () => {
  const s = state([node('n1', { mounts: { '/live.mp3': 1 } })], [mount('/live.mp3')]);
  const plain = buildStatusView(s, { domain: 'r.test', nodeName: 'n', httpPort: 80, now: 0 });
  assert.equal(plain.mounts[0]!.streamUrl, 'http://r.test/live.mp3');
  const secure = buildStatusView(s, { domain: 'r.test', nodeName: 'n', httpPort: 80, now: 0, scheme: { kind: 'https', port: 443 } });
  assert.equal(secure.mounts[0]!.streamUrl, 'https://r.test/live.mp3');
  assert.equal(secure.mounts[0]!.playlists['m3u'], 'https://r.test/live.mp3.m3u');
  const html = renderStatusPage(secure);
  assert.doesNotMatch(html, /http:\/\/r\.test/);
});
