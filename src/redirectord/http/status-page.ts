import { escapeHtml as h } from './escape.js';
import { listenerChart } from './listener-chart.js';
import { HISTORY_MINUTES } from '../../coordination/listener-history.js';
import type { StatusMount, StatusNode, StatusView } from './status-view.js';

/**
 * The HTML status page: server-rendered, no script, readable on a phone. Every value from the
 * cluster view goes through escapeHtml (node names and mount paths are operator input).
 */

const CSS = `
body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;max-width:60em;padding:.5em 1em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:.4em 0}h2{font-size:1.15em;margin:1.2em 0 .4em}
.banner{background:#b00020;color:#fff;padding:.6em 1em;border-radius:4px;font-weight:600}
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #ddd;vertical-align:top}
th{background:#eee;font-weight:600}.ok{color:#1b5e20}.bad{color:#b00020;font-weight:600}
.muted{color:#666;font-size:.9em}.tag{display:inline-block;background:#1565c0;color:#fff;border-radius:3px;padding:0 .4em;font-size:.85em}
a{color:#1565c0}.chart{margin:.4em 0 1em}.chart figcaption{font-weight:600}`;

function limit(value: number, max: number, unit = ''): string {
  return max > 0 ? `${value}${unit} / ${max}${unit}` : `${value}${unit} / unlimited`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function kbps(v: number): string {
  return String(Math.round(v));
}

function nodeRow(n: StatusNode): string {
  const health = n.icecastOk ? '<span class="ok">ok</span>' : '<span class="bad">Icecast down</span>';
  const pct = n.utilization === null ? '' : ` <span class="muted">(${Math.round(n.utilization * 100)} %)</span>`;
  return (
    `<tr class="node" data-node="${h(n.name)}"><td>${h(n.name)}${n.master ? ' <span class="tag">master</span>' : ''}` +
    `<div class="muted">${n.addresses.map(h).join(', ')}</div></td>` +
    `<td>${health}${n.draining ? ' <span class="tag draining">draining</span>' : ''}` +
    `<div class="muted">reported ${h(n.reportAgeSeconds)} s ago · version ${h(n.version)}</div></td>` +
    `<td>${h(limit(n.listeners, n.maxListeners))}${pct}</td>` +
    `<td>${h(limit(Math.round(n.bandwidthKbps), n.maxBandwidthKbps, ''))} kbit/s</td></tr>`
  );
}

function mountDetails(m: StatusMount): string {
  const parts: string[] = [];
  if (m.relayUrl !== undefined) parts.push(`relay of ${h(m.relayUrl)}`);
  if (m.transcoding) {
    const t = m.transcoding;
    parts.push(`transcoded from ${h(t.source)}: ${h(t.codec)} ${h(t.bitrate)} kbit/s, ${h(t.samplerate)} Hz, ${h(t.channels)} ch`);
  }
  if (m.fallback !== undefined) parts.push(`fallback ${h(m.fallback)}`);
  return parts.length > 0 ? parts.join('<br>') : '<span class="muted">live source</span>';
}

function onAirCell(m: StatusMount): string {
  if (!m.onAir) return '<span class="bad">off air</span>';
  const codec = [m.contentType, m.bitrateKbps === undefined ? undefined : `${m.bitrateKbps} kbit/s`].filter((x) => x !== undefined);
  return (
    `<span class="ok">on air</span><div class="muted">since ${h(m.sourceSince ?? '?')}` +
    `${codec.length > 0 ? ` · ${h(codec.join(', '))}` : ''}</div>` +
    (m.title === undefined ? '' : `<div class="title">${h(m.title)}</div>`)
  );
}

function mountRow(m: StatusMount): string {
  // Relative links work whichever node or address served the page.
  const href = h(m.path);
  return (
    `<tr class="mount" data-mount="${h(m.path)}"><td><a href="${href}">${h(m.path)}</a>` +
    `<div class="muted">${h(m.streamUrl)}</div></td>` +
    `<td>${onAirCell(m)}</td><td>${h(m.listeners)}</td><td>${mountDetails(m)}</td>` +
    `<td><a href="${href}.m3u">m3u</a> <a href="${href}.pls">pls</a> <a href="${href}.xspf">xspf</a></td></tr>`
  );
}

function historySection(v: StatusView): string {
  const hist = v.history;
  if (!hist || hist.total.length === 0) return '';
  const charts = [listenerChart('All mounts', hist.total, hist.end, HISTORY_MINUTES)];
  for (const [path, samples] of Object.entries(hist.mounts)) charts.push(listenerChart(path, samples, hist.end, HISTORY_MINUTES));
  return `<h2>Listeners, last 24 hours</h2>\n<div id="history">${charts.join('\n')}</div>\n`;
}

export function renderStatusPage(v: StatusView): string {
  const banner = v.connected
    ? ''
    : '<p class="banner" id="disconnected">This node has lost contact with the cluster database: the view below is the last one it knew.</p>';
  const master = v.master
    ? `Master: <strong>${h(v.master.name)}</strong>`
    : '<span class="bad">No master elected</span>';
  const nodes =
    v.nodes.length > 0
      ? v.nodes.map(nodeRow).join('\n')
      : '<tr><td colspan="4" class="bad">No live nodes</td></tr>';
  const mounts =
    v.mounts.length > 0
      ? v.mounts.map(mountRow).join('\n')
      : '<tr><td colspan="5" class="muted">No mounts configured</td></tr>';
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${h(v.domain)} — autoradio</title>
<style>${CSS}</style></head>
<body>
${banner}
<h1>${h(v.domain)}</h1>
<p>${master} · ${plural(v.totals.nodes, 'node')} · ${plural(v.totals.listeners, 'listener')} · ${h(kbps(v.totals.bandwidthKbps))} kbit/s</p>
<h2>Streams</h2>
<div class="scroll"><table id="mounts"><thead><tr><th>Mount</th><th>On air</th><th>Listeners</th><th>Details</th><th>Playlists</th></tr></thead>
<tbody>
${mounts}
</tbody></table></div>
${historySection(v)}<h2>Nodes</h2>
<div class="scroll"><table id="nodes"><thead><tr><th>Node</th><th>Health</th><th>Listeners</th><th>Bandwidth</th></tr></thead>
<tbody>
${nodes}
</tbody></table></div>
${v.versions.length > 1 ? `<p class="muted" id="mixed-versions">Mixed versions: ${h(v.versions.join(', '))}</p>\n` : ''}<p class="muted">Served by ${h(v.servedBy)} at ${h(v.generatedAt)} · <a href="/status.json">status.json</a></p>
</body></html>
`;
}
