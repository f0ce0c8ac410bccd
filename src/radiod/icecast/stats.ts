import { child, childText, children, parseXml } from './xml.js';

/**
 * Icecast's status documents, parsed into one shape. Pure: the poller fetches, this reads.
 */
export interface IcecastMountStats {
  mount: string;
  listeners: number;
  /** Bytes sent to this mount's listeners since its source started; absent from status-json. */
  totalBytesSent?: number;
  totalBytesRead?: number;
  sourceIp?: string;
  userAgent?: string;
  /** When the mount's current source (client or relay) started, ms since the epoch: set means on air. */
  sourceSince?: number;
  /** The current title (stream metadata), when the source sent one. */
  title?: string;
  /** The stream's content type, e.g. audio/mpeg. */
  contentType?: string;
  /** Nominal bitrate the source announced (ice-bitrate or ice-audio-info), kbit/s. */
  bitrateKbps?: number;
}

export interface IcecastStats {
  serverId: string;
  /** Listeners on all mounts (relays pulling from this server count as listeners). */
  listeners: number;
  mounts: IcecastMountStats[];
}

function nonNegativeInt(value: string | number | undefined | null): number | undefined {
  if (value === undefined || value === null) return undefined;
  const n = typeof value === 'number' ? value : Number(String(value).trim());
  return Number.isFinite(n) && n >= 0 ? Math.floor(n) : undefined;
}

/** `/admin/stats` (Basic auth with the admin credentials): Icecast's stable XML. */
export function parseAdminStats(xml: string): IcecastStats {
  const root = parseXml(xml);
  if (root.name !== 'icestats') throw new Error(`expected <icestats>, got <${root.name}>`);
  const serverId = childText(root, 'server_id');
  if (serverId === undefined) throw new Error('icestats has no server_id (stats not populated yet)');
  const mounts: IcecastMountStats[] = [];
  for (const src of children(root, 'source')) {
    const mount = src.attributes['mount'];
    if (!mount) continue;
    const m: IcecastMountStats = { mount, listeners: nonNegativeInt(childText(src, 'listeners')) ?? 0 };
    const sent = nonNegativeInt(childText(src, 'total_bytes_sent'));
    if (sent !== undefined) m.totalBytesSent = sent;
    const read = nonNegativeInt(childText(src, 'total_bytes_read'));
    if (read !== undefined) m.totalBytesRead = read;
    const ip = childText(src, 'source_ip');
    if (ip) m.sourceIp = ip;
    const ua = child(src, 'user_agent')?.text;
    if (ua) m.userAgent = ua;
    Object.assign(m, onAirFields({
      streamStart: childText(src, 'stream_start_iso8601'),
      title: child(src, 'title')?.text,
      contentType: childText(src, 'server_type'),
      bitrate: childText(src, 'bitrate') ?? childText(src, 'ice-bitrate'),
      audioInfo: childText(src, 'audio_info'),
    }));
    mounts.push(m);
  }
  const sum = mounts.reduce((acc, m) => acc + m.listeners, 0);
  return { serverId, listeners: nonNegativeInt(childText(root, 'listeners')) ?? sum, mounts };
}

/**
 * `/status-json.xsl` (no auth), the fallback. Right after start it can be invalid JSON, and
 * `source` is an object for one mount, an array for several, absent for none.
 */
export function parseStatusJson(json: string): IcecastStats {
  const doc = JSON.parse(json) as { icestats?: Record<string, unknown> };
  const ice = doc.icestats;
  if (!ice || typeof ice !== 'object') throw new Error('status-json has no icestats');
  const serverId = ice['server_id'];
  if (typeof serverId !== 'string') throw new Error('icestats has no server_id (stats not populated yet)');
  const raw = ice['source'];
  const list: unknown[] = raw === undefined || raw === null ? [] : Array.isArray(raw) ? raw : [raw];
  const mounts: IcecastMountStats[] = [];
  for (const s of list) {
    if (!s || typeof s !== 'object') continue;
    const src = s as Record<string, unknown>;
    const mount = mountFromListenUrl(src['listenurl']);
    if (!mount) continue;
    const text = (key: string): string | undefined => (typeof src[key] === 'string' || typeof src[key] === 'number' ? String(src[key]) : undefined);
    mounts.push({
      mount,
      listeners: nonNegativeInt(src['listeners'] as number | string | undefined) ?? 0,
      ...onAirFields({
        streamStart: text('stream_start_iso8601'),
        title: text('title'),
        contentType: text('server_type'),
        bitrate: text('bitrate') ?? text('audio_bitrate'),
      }),
    });
  }
  return { serverId, listeners: mounts.reduce((acc, m) => acc + m.listeners, 0), mounts };
}

/** status-json names mounts only through their listen URL. */
function mountFromListenUrl(url: unknown): string | undefined {
  if (typeof url !== 'string') return undefined;
  try {
    return decodeURIComponent(new URL(url).pathname);
  } catch {
    return undefined;
  }
}

/** Icecast writes `2026-11-22T02:17:57+0000`; Date.parse wants the offset as +00:00. */
export function parseIcecastIsoTime(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const t = Date.parse(text.trim().replace(/([+-]\d\d)(\d\d)$/, '$1:$2'));
  return Number.isFinite(t) ? t : undefined;
}

/** `bitrate=128;samplerate=44100` (ice-audio-info) or a bare number; Ogg's audio_bitrate is in bit/s. */
function bitrateKbps(bitrate: string | undefined, audioInfo: string | undefined): number | undefined {
  const fromInfo = audioInfo ? /(?:^|;)\s*(?:ice-)?bitrate=(\d+)/i.exec(audioInfo)?.[1] : undefined;
  const n = nonNegativeInt(bitrate ?? fromInfo);
  if (n === undefined || n === 0) return undefined;
  return n >= 8000 ? Math.round(n / 1000) : n;
}

const MAX_TITLE_LENGTH = 256;

/** The "what is playing" fields of one mount, from the raw strings either status document carries. */
function onAirFields(raw: {
  streamStart: string | undefined;
  title: string | undefined;
  contentType: string | undefined;
  bitrate: string | undefined;
  audioInfo?: string | undefined;
}): Pick<IcecastMountStats, 'sourceSince' | 'title' | 'contentType' | 'bitrateKbps'> {
  const out: Pick<IcecastMountStats, 'sourceSince' | 'title' | 'contentType' | 'bitrateKbps'> = {};
  const since = parseIcecastIsoTime(raw.streamStart);
  if (since !== undefined) out.sourceSince = since;
  const title = raw.title?.trim();
  // Titles come from whoever holds the source password: bounded, since they are republished in etcd.
  if (title) out.title = title.slice(0, MAX_TITLE_LENGTH);
  if (raw.contentType) out.contentType = raw.contentType.trim();
  const kbps = bitrateKbps(raw.bitrate, raw.audioInfo);
  if (kbps !== undefined) out.bitrateKbps = kbps;
  return out;
}
