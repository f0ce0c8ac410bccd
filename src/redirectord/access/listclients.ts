import { timingSafeEqual, createHash } from 'node:crypto';
import { escapeXml } from '../../common/xml-escape.js';
import { isValidMountPath } from '../../coordination/mount.js';

/**
 * The front door's answer to Icecast's `GET /admin/listclients?mount=/x`: the listeners this
 * node holds right now, with their own addresses. Icecast sees one connection per mount (the
 * fan-out's feed, from 127.0.0.1), so its own listclients cannot tell who listens; tools written
 * for Icecast's answer read this one unchanged (same elements, same admin credentials).
 * `/admin/listclients.json` gives the same list with the fields Icecast leaves out. Pure.
 */
export interface CurrentListener {
  /** Unique among this process's listeners, like Icecast's client id. */
  id: number;
  mount: string;
  /** The listener's own address, IPv4 clients written as IPv4. */
  address: string;
  userAgent?: string;
  referer?: string;
  /** When its stream started, ms since the epoch. */
  since: number;
  /** Bytes sent to it, head included. */
  bytes: number;
}

export type ListclientsFormat = 'xml' | 'json';

/**
 * Longest user agent or referer in the documents, in characters (longer ones end with `…`). A
 * listener chooses them (up to a 16 KiB head, 6 characters each once escaped): unbounded, a few
 * thousand listeners sending such heads made the document longer than a string can be, and the
 * front door's 28,000 connections must still fit the 64 MiB radioctl reads from a node.
 */
export const LISTCLIENTS_TEXT_MAX = 256;

/**
 * A listener's own text for the documents: bounded, and without control characters (those XML
 * cannot carry are removed from the JSON too, so that both list the same text).
 */
function clientText(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  // Cut first: the work per listener stays bounded too (cleaning 16 KiB heads of 28,000
  // listeners held the front door's event loop for seconds).
  const cut = value.length > LISTCLIENTS_TEXT_MAX ? `${value.slice(0, cutAt(value, LISTCLIENTS_TEXT_MAX - 1))}…` : value;
  // C1 too: allowed in XML, but never in a user agent, and a terminal showing the document
  // (curl) takes U+009B as CSI.
  // eslint-disable-next-line no-control-regex
  return cut.replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/g, '');
}

export interface ListclientsRequest {
  format: ListclientsFormat;
  /** Only this mount's listeners; every mount when absent (Icecast requires it; here it is optional). */
  mount?: string;
}

export const LISTCLIENTS_PATHS: ReadonlyMap<string, ListclientsFormat> = new Map([
  ['/admin/listclients', 'xml'],
  ['/admin/listclients.json', 'json'],
]);

/**
 * The request's `mount` parameter (percent-decoded), or an error for people. Only a mount path
 * is taken: the asked mount is echoed in the document, and decoded bytes could be anything
 * (U+FFFE is no XML character even escaped; a 5,000-character name is no mount).
 */
export function listclientsRequest(format: ListclientsFormat, query: string): ListclientsRequest | { error: string } {
  const params = new URLSearchParams(query.startsWith('?') ? query.slice(1) : query);
  const mounts = params.getAll('mount');
  if (mounts.length > 1) return { error: 'give one mount parameter at most' };
  const mount = mounts[0];
  if (mount === undefined || mount === '') return { format };
  if (!isValidMountPath(mount)) return { error: 'the mount parameter is a mount path, such as /live.mp3' };
  return { format, mount };
}

/** `end`, or one less where it would split a surrogate pair: a lone half is no character. */
function cutAt(value: string, end: number): number {
  const last = value.charCodeAt(end - 1);
  return last >= 0xd800 && last <= 0xdbff ? end - 1 : end;
}

/**
 * Icecast's listclients document: one `source` per mount (a requested mount appears even with no
 * listener), each listener with `IP`, `UserAgent`, `Connected` (seconds) and `ID`.
 */
export function renderListclientsXml(listeners: readonly CurrentListener[], request: ListclientsRequest, now: number): string {
  const parts = ['<?xml version="1.0"?>\n<icestats>'];
  for (const [mount, ofMount] of byMount(listeners, request.mount)) {
    parts.push(`<source mount="${escapeXml(mount)}"><Listeners>${ofMount.length}</Listeners>`);
    for (const l of ofMount) {
      parts.push(
        `<listener><IP>${escapeXml(l.address)}</IP><UserAgent>${escapeXml(clientText(l.userAgent) ?? '')}</UserAgent>` +
          `<Connected>${connectedSeconds(l, now)}</Connected><ID>${l.id}</ID></listener>`,
      );
    }
    parts.push('</source>');
  }
  parts.push('</icestats>\n');
  return parts.join('');
}

export function renderListclientsJson(listeners: readonly CurrentListener[], request: ListclientsRequest, now: number): string {
  const mounts = [...byMount(listeners, request.mount)].map(([mount, ofMount]) => ({
    mount,
    listeners: ofMount.map((l) => ({
      id: l.id,
      address: l.address,
      userAgent: clientText(l.userAgent) ?? null,
      referer: clientText(l.referer) ?? null,
      since: new Date(l.since).toISOString(),
      connectedSeconds: connectedSeconds(l, now),
      bytes: l.bytes,
    })),
  }));
  return JSON.stringify({ mounts });
}

/** Listeners grouped by mount, mounts and listeners in a stable order (path; oldest first). */
function byMount(listeners: readonly CurrentListener[], only: string | undefined): Map<string, CurrentListener[]> {
  const groups = new Map<string, CurrentListener[]>();
  if (only !== undefined) groups.set(only, []);
  for (const l of listeners) {
    if (only !== undefined && l.mount !== only) continue;
    const group = groups.get(l.mount) ?? [];
    group.push(l);
    groups.set(l.mount, group);
  }
  for (const group of groups.values()) group.sort((a, b) => a.since - b.since || a.id - b.id);
  return new Map([...groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function connectedSeconds(l: CurrentListener, now: number): number {
  return Math.max(0, Math.floor((now - l.since) / 1000));
}

/**
 * Whether an Authorization header carries `admin` and the cluster's Icecast admin password (HTTP
 * Basic, as Icecast takes them). Compared in constant time over digests, so neither the length
 * nor a prefix of the password shows in the answer's timing.
 */
export function isAdminAuthorization(header: string | undefined, password: string | undefined): boolean {
  if (!header || !password) return false;
  const m = /^\s*basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m) return false;
  const given = Buffer.from(m[1]!, 'base64').toString('latin1');
  const digest = (s: string) => createHash('sha256').update(s, 'latin1').digest();
  return timingSafeEqual(digest(given), digest(`admin:${password}`));
}
