import type { CertificateSummary } from '../coordination/acme.js';
import type { ClusterSummary, MountOnAir } from '../coordination/cluster-summary.js';
import type { Mount, PublicMount } from '../coordination/mount.js';
import type { ClusterListeners } from './node-listeners.js';

/** Plain-text renderings for people. Pure. */

export function describeMount(m: PublicMount): string {
  const lines = [m.path, `  source username: ${m.username}`];
  if (m.relayUrl) lines.push(`  relay from: ${m.relayUrl}`);
  if (m.fallback) lines.push(`  fallback: ${m.fallback}`);
  if (m.transcoding) {
    const t = m.transcoding;
    const quality = t.quality === undefined ? '' : `, quality ${t.quality}`;
    lines.push(
      `  transcoded from ${t.source}: ${t.codec} ${t.bitrate} kbit/s, ${t.samplerate} Hz, ${t.channels === 1 ? 'mono' : 'stereo'}${quality}`,
    );
  }
  return lines.join('\n');
}

/** One line on what a mount plays: on air since when, codec, bitrate, title. */
export function onAirLine(m: MountOnAir): string {
  if (!m.onAir) return 'off air';
  const codec = [m.contentType, m.bitrateKbps === undefined ? undefined : `${m.bitrateKbps} kbit/s`].filter((x) => x !== undefined);
  const title = m.title === undefined ? '' : `, "${m.title}"`;
  return `on air since ${m.sourceSince ?? '?'}${codec.length > 0 ? ` (${codec.join(', ')})` : ''}${title}`;
}

export function describeCredentials(m: Mount): string {
  return [`mount: ${m.path}`, `source username: ${m.username}`, `source password: ${m.password}`].join('\n');
}

export function mountListLine(m: PublicMount): string {
  const kind = m.transcoding ? `transcoded from ${m.transcoding.source}` : m.relayUrl ? `relay of ${m.relayUrl}` : 'source';
  const fallback = m.fallback ? `, fallback ${m.fallback}` : '';
  return `${m.path}\t${kind}${fallback}`;
}

function padTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** One line about the cluster's ACME certificate. */
export function describeCertificate(c: CertificateSummary | undefined): string {
  if (!c) return 'https: no cluster certificate in etcd (ACME not used, or not issued yet)';
  const days = c.expiresInSeconds / 86400;
  const left =
    c.expiresInSeconds <= 0 ? 'EXPIRED' : days >= 2 ? `in ${Math.floor(days)} days` : days >= 1 ? 'in 1 day' : `in ${Math.floor(c.expiresInSeconds / 60)} minutes`;
  return `https: certificate for ${c.domain} (${c.names}) expires ${c.notAfter}, ${left}; ordered by ${c.orderedBy} at ${c.storedAt}`;
}

export function describeStatus(s: ClusterSummary): string {
  const parts: string[] = [];
  if (!s.connected) parts.push('warning: etcd did not answer; this is the last known state');
  parts.push(`master: ${s.master ?? '(none elected)'}`);
  parts.push('');
  if (s.nodes.length === 0) parts.push('nodes: none alive');
  else {
    const rows = [['NODE', 'ADDRESSES', 'ICECAST', 'LISTENERS', 'BANDWIDTH', 'ROLE', 'VERSION']];
    for (const n of s.nodes) {
      rows.push([
        n.name,
        n.addresses.join(','),
        n.icecastOk ? 'ok' : 'DOWN',
        `${n.listeners}/${n.maxListeners === 0 ? 'unlimited' : n.maxListeners}`,
        `${Math.round(n.bandwidthKbps)} kbit/s${n.maxBandwidthKbps > 0 ? ` of ${n.maxBandwidthKbps}` : ''}`,
        `${n.isMaster ? 'master' : 'relay'}${n.draining ? ',draining' : ''}`,
        n.version ?? 'unknown',
      ]);
    }
    parts.push(padTable(rows));
  }
  parts.push('');
  if (s.mounts.length === 0) parts.push('mounts: none');
  else {
    const rows = [['MOUNT', 'LISTENERS', 'BY NODE', 'ON AIR']];
    for (const m of s.mounts) {
      const byNode = Object.entries(m.listenersByNode)
        .map(([n, c]) => `${n}=${c}`)
        .join(' ');
      rows.push([m.path, String(m.listeners), byNode || '-', onAirLine(m)]);
    }
    parts.push(padTable(rows));
  }
  parts.push('');
  const t = s.totals;
  parts.push(
    `total: ${t.nodes} nodes (${t.healthyNodes} healthy), ${t.listeners} listeners${t.maxListeners > 0 ? ` of ${t.maxListeners}` : ''}, ${Math.round(t.bandwidthKbps)} kbit/s`,
  );
  if (s.versions.length > 1) parts.push(`mixed versions: ${s.versions.join(', ')} (an upgrade is under way)`);
  return parts.join('\n');
}

/** `radioctl listeners`: one row per listener, then the count and any node that did not answer. */
export function describeListeners(c: ClusterListeners): string {
  const parts: string[] = [];
  if (c.listeners.length > 0) {
    const rows = [['MOUNT', 'NODE', 'ADDRESS', 'CONNECTED', 'BYTES', 'USER AGENT']];
    for (const l of c.listeners) {
      rows.push([printable(l.mount), printable(l.node), printable(l.address), duration(l.connectedSeconds), String(l.bytes), oneLine(l.userAgent ?? '-')]);
    }
    parts.push(padTable(rows));
  }
  const nodes = new Set(c.listeners.map((l) => l.node)).size;
  parts.push(`${c.listeners.length} listener${c.listeners.length === 1 ? '' : 's'}${c.listeners.length > 0 ? ` on ${nodes} node${nodes === 1 ? '' : 's'}` : ''}`);
  // The error may quote the node's own answer (or whatever else answered at its address).
  for (const u of c.unanswered) parts.push(`warning: ${printable(u.node)} did not answer (${printable(u.error)}): its listeners are missing`);
  return parts.join('\n');
}

/** 59s, 12m05s, 3h07m, 2d04h. */
function duration(seconds: number): string {
  const two = (n: number) => String(n).padStart(2, '0');
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${two(seconds % 60)}s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h${two(Math.floor(seconds / 60) % 60)}m`;
  return `${Math.floor(seconds / 86400)}d${two(Math.floor(seconds / 3600) % 24)}h`;
}

/**
 * Text someone else chose, for the terminal: C0 and C1 controls (a header's bytes 0x80-0x9f
 * arrive as U+0080-U+009F, and terminals take U+009B as CSI) and bidirectional overrides, which
 * would reorder what follows on the line, each become `?`.
 */
function printable(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g, '?');
}

/** A client-chosen string in a table: printable, at most 60 characters. */
function oneLine(value: string): string {
  const clean = printable(value);
  return clean.length > 60 ? `${clean.slice(0, 59)}…` : clean;
}
