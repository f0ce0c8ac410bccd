/**
 * One finished listener session as a line of Icecast's access.log, which is Apache's combined
 * format plus the session's length in seconds:
 *   203.0.113.9 - - [04/Dec/2026:20:18:37 +0000] "GET /live.mp3 HTTP/1.1" 200 49244 "-" "curl/7.88.1" 5
 * Like Icecast, the date is when the session ended; its start is that date minus the length.
 * Pure: no I/O.
 */
export interface ListenerSession {
  /** The listener's own address, as written (IPv4 clients as IPv4). */
  address: string;
  method: string;
  /** The path the listener asked for, as Icecast saw it (without the `/_stream` prefix). */
  target: string;
  version: string;
  status: number;
  /** Bytes sent to the listener, head included. */
  bytes: number;
  referer?: string;
  userAgent?: string;
  startedAt: number;
  endedAt: number;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number) => String(n).padStart(2, '0');

/** `[dd/Mon/yyyy:HH:MM:SS +0000]`, in UTC so that a log never depends on the node's time zone. */
export function commonLogDate(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}

/**
 * A value inside double quotes: quotes and backslashes escaped, control characters as \xHH,
 * never empty. C1 (U+0080-U+009F) included: terminals take U+009B as CSI, and a log is read with
 * `tail -f`.
 */
function quoted(value: string | undefined): string {
  if (!value) return '"-"';
  // eslint-disable-next-line no-control-regex
  const safe = value.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return `"${safe}"`;
}

/** A bare token (method, version, address): anything but visible ASCII becomes `_`. */
function token(value: string): string {
  return value.length === 0 ? '-' : value.replace(/[^\x21-\x7e]/g, '_').replace(/"/g, '_');
}

export function formatAccessLogLine(s: ListenerSession): string {
  const address = token(s.address);
  const request = `${token(s.method)} ${s.target} ${token(s.version || 'HTTP/1.0')}`;
  const seconds = Math.max(0, Math.round((s.endedAt - s.startedAt) / 1000));
  return `${address} - - [${commonLogDate(s.endedAt)}] ${quoted(request)} ${s.status} ${Math.max(0, s.bytes)} ${quoted(s.referer)} ${quoted(s.userAgent)} ${seconds}`;
}
