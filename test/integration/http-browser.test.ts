import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { launchChromium, serveOtherOrigin, audioState } from '../support/browser.js';
import { startIcecast, icecastSources } from '../support/icecast.js';
import { startProcess } from '../support/processes.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';
import { makeApp, mount, node, state } from '../support/http-fixtures.js';

/**
 * Issue 5: a headless Chromium loads the status page, and plays a stream in an <audio>
 * element of a page from another origin: the element's URL is the balancer's redirect, which
 * sends the browser cross-origin to the Icecast that has the stream.
 */

async function mountLive(icecastUrl: string, path: string): Promise<boolean> {
  return (await icecastSources(icecastUrl).catch(() => new Map())).has(path);
}

test('Chromium shows the status page and plays a redirected stream from another origin', { timeout: 90_000 }, async (t) => {
  const icecast = await startIcecast({ sourcePassword: 'browserpw1' });
  t.after(() => icecast.stop());

  const ffmpeg = startProcess('ffmpeg', [
    '-hide_banner', '-loglevel', 'warning', '-re', '-f', 'lavfi', '-i', 'sine=frequency=440',
    '-c:a', 'libmp3lame', '-b:a', '128k', '-content_type', 'audio/mpeg', '-f', 'mp3',
    `icecast://source:browserpw1@127.0.0.1:${icecast.port}/test.mp3`,
  ]);
  t.after(() => ffmpeg.stop('SIGTERM', 2000));
  await waitFor('the source on Icecast', () => mountLive(icecast.url, '/test.mp3'), { timeoutMs: 15_000, intervalMs: 100 }).catch(
    (err: Error) => {
      throw new Error(`${err.message}\n${ffmpeg.output.join('\n')}`);
    },
  );

  const appPort = await freePort();
  const { app, server, metrics } = await makeApp(
    state([node('node1', { addresses: ['127.0.0.1'], icecastPort: icecast.port, listeners: 3, maxListeners: 50 })], [mount('/test.mp3')], {
      history: { v: 1, end: Date.UTC(2026, 11, 4, 12, 0), total: [1, 2, null, 3], mounts: { '/test.mp3': [1, 2, null, 3] } },
    }),
    { enableIcecastProxy: false, httpPort: appPort, domain: 'radio.test' },
  );
  server.listen(appPort, '127.0.0.1');
  await once(server, 'listening');
  t.after(async () => {
    await app.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  const streamUrl = `http://127.0.0.1:${appPort}/test.mp3`;

  // The other origin: same host, another port.
  const page = `<!DOCTYPE html><html><body>
<audio id="player" src="${streamUrl}" autoplay muted></audio>
<pre id="cors"></pre>
<script>
  fetch('${streamUrl}.m3u', { headers: { 'Icy-MetaData': '1' } })
    .then((r) => r.text())
    .then((t) => { document.getElementById('cors').textContent = t; })
    .catch((e) => { document.getElementById('cors').textContent = 'ERROR ' + e; });
</script></body></html>`;
  const originPort = await serveOtherOrigin(t, page);

  const { context, profile } = await launchChromium(t);

  // Status page.
  const statusPage = await context.newPage();
  const consoleErrors: string[] = [];
  statusPage.on('console', (m) => void (m.type() === 'error' && consoleErrors.push(m.text())));
  statusPage.on('pageerror', (e) => consoleErrors.push(e.message));
  const failedLoads: string[] = [];
  statusPage.on('response', (r) => void (r.status() >= 400 && failedLoads.push(new URL(r.url()).pathname)));
  const res = await statusPage.goto(`http://127.0.0.1:${appPort}/`, { timeout: 15_000 });
  assert.equal(res?.status(), 200);
  assert.equal(await statusPage.locator('tr.node[data-node="node1"]').count(), 1);
  assert.match(await statusPage.locator('tr.node[data-node="node1"]').innerText(), /node1[^]*master[^]*3 \/ 50/);
  assert.equal(await statusPage.locator('tr.mount[data-mount="/test.mp3"] a[href="/test.mp3.m3u"]').count(), 1);
  // Listeners over time: inline SVG per mount and in total, drawn (a non-empty box), no CSP or console error.
  assert.equal(await statusPage.locator('#history figure.chart svg').count(), 2);
  // Four minutes of a 24 h axis: a short line at the right end of a full-width chart.
  const svgBox = await statusPage.locator('figure.chart[data-chart="/test.mp3"] svg').boundingBox();
  const box = await statusPage.locator('figure.chart[data-chart="/test.mp3"] svg path').boundingBox();
  assert.ok(svgBox && svgBox.width > 300, `chart not laid out: ${JSON.stringify(svgBox)}`);
  assert.ok(box && box.width > 0 && box.height > 0 && box.x + box.width > svgBox.x + svgBox.width * 0.95, `chart line not drawn: ${JSON.stringify(box)}`);
  // Chromium asks for /favicon.ico on its own (a 404 it logs as "Failed to load resource"):
  // failed loads are checked by URL, every other console error (CSP refusals too) fails.
  assert.deepEqual(failedLoads.filter((p) => p !== '/favicon.ico'), []);
  assert.deepEqual(consoleErrors.filter((m) => !m.startsWith('Failed to load resource')), []);
  const shot = join(profile, 'status.png');
  await statusPage.screenshot({ path: shot, fullPage: true });
  if (process.env['AUTORADIO_KEEP_SCREENSHOT']) await statusPage.screenshot({ path: process.env['AUTORADIO_KEEP_SCREENSHOT'], fullPage: true });
  assert.ok((await stat(shot)).size > 2000, 'status page screenshot is empty');

  // Player on the other origin.
  const player = await context.newPage();
  await player.goto(`http://127.0.0.1:${originPort}/`, { timeout: 15_000 });
  const started = Date.now();
  const playing = await waitFor(
    'the <audio> element playing',
    async () => {
      const s = await audioState(player, 'player');
      return s.t > 0.5 ? s : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 100 },
  );
  t.diagnostic(`audio currentTime ${playing.t.toFixed(2)} s, readyState ${playing.ready}, after ${Date.now() - started} ms`);
  assert.ok(playing.ready >= 2);
  assert.ok((metrics.counts.get('http.redirect.node1') ?? 0) >= 1, 'the browser never asked the balancer');

  // The cross-origin fetch (with a preflight for Icy-MetaData) read the playlist.
  const corsText = await waitFor('the cross-origin playlist fetch', async () => {
    const text = await player.locator('#cors').textContent();
    return text ? text : undefined;
  });
  assert.match(corsText, /^#EXTM3U\n/);
  assert.match(corsText, new RegExp(`http://radio\\.test:${appPort}/test\\.mp3\\n$`));
});
