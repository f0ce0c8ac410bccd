import { isValidMountPath } from '../../coordination/mount.js';
import { hasFramedBody, originForm, splitTarget, type RequestHead } from './request-head.js';
import { STREAM_PREFIX } from './urls.js';
import { RELAY_PREFIX } from '../../coordination/relay-route.js';
import { mediaType } from '../../common/media-type.js';
import { FRONT_DOOR_LISTENERS_PATH } from '../../coordination/front-door-listeners.js';
import { LISTCLIENTS_PATHS, type ListclientsFormat } from '../access/listclients.js';

/**
 * What the front door does with a connection, decided from its first request head alone.
 * Pure: the front door (I/O) acts on the answer.
 */
export type Classification =
  /** A source client's dialogue (or its libshout probes): spliced to the master's Icecast. */
  | { kind: 'source' }
  /** A listener stream: raw proxy to the local Icecast at `upstreamTarget`. */
  | { kind: 'stream'; upstreamTarget: string }
  /**
   * The local Icecast's relay of a mount: proxied from whichever Icecast is master now, and
   * moved to the next master without closing, so Icecast's relay never restarts on a failover.
   */
  | { kind: 'relay'; upstreamTarget: string }
  /** This node's radiod asks for the front door's listener counts (front-door-listeners.ts). */
  | { kind: 'listener-counts' }
  /**
   * Icecast's listclients, answered by the front door from the listeners it holds (Icecast sees
   * only the fan-out's feeds); admin credentials are checked by the front door.
   */
  | { kind: 'listclients'; format: ListclientsFormat; query: string }
  /** CORS preflight for a stream URL, answered by the front door itself. */
  | { kind: 'stream-preflight' }
  /** Answered by the front door with this status and closed. */
  | { kind: 'reject'; status: 403 | 404 | 405; reason: string }
  /** Everything else: handed to the HTTP application. */
  | { kind: 'http' };


/** The only Icecast admin commands source clients need; every other admin URL stays private. */
const ADMIN_ALLOWED = new Set(['/admin/metadata', '/admin/!POKE']);

export interface ClassifyOptions {
  streamProxy?: boolean;
  /** Whether a path is one of the cluster's mounts: Icecast's own pages are not streams. */
  isMount?: (path: string) => boolean;
  /** The client is this host (loopback): only the local Icecast may open a relay. */
  fromLoopback?: boolean;
}

export function classifyRequest(head: RequestHead, opts: ClassifyOptions = {}): Classification {
  const method = head.method;
  // Absolute form is classified by its path: `GET http://any.host/_stream/x` is a stream too.
  const { path, query } = splitTarget(originForm(head.target));

  if (method === 'SOURCE') return { kind: 'source' };
  // ffmpeg's icecast:// PUT streams with neither Content-Length nor chunking; an HTTP PUT has one.
  if (method === 'PUT' && !hasFramedBody(head)) return { kind: 'source' };
  // libshout's TLS upgrade probe: Icecast must answer it (it closes), or libshout gives up.
  if (method === 'OPTIONS' && head.target === '*') return { kind: 'source' };

  if (path.startsWith('/admin/')) {
    if (ADMIN_ALLOWED.has(path)) return { kind: 'source' };
    const listclients = LISTCLIENTS_PATHS.get(path);
    if (listclients !== undefined) {
      return method === 'GET' ? { kind: 'listclients', format: listclients, query } : { kind: 'reject', status: 405, reason: 'listclients answers GET only' };
    }
    return { kind: 'reject', status: 403, reason: 'the Icecast admin interface is not exposed' };
  }

  if (path === FRONT_DOOR_LISTENERS_PATH) {
    // From outside the route does not exist, as for relays.
    if (!opts.fromLoopback) return { kind: 'reject', status: 404, reason: 'no such stream' };
    return method === 'GET' ? { kind: 'listener-counts' } : { kind: 'reject', status: 405, reason: 'listener counts answer GET only' };
  }

  if (path === RELAY_PREFIX || path.startsWith(`${RELAY_PREFIX}/`)) return classifyRelay(method, path.slice(RELAY_PREFIX.length), query, opts);

  if (opts.streamProxy !== false && (path === STREAM_PREFIX || path.startsWith(`${STREAM_PREFIX}/`))) {
    const mount = path.slice(STREAM_PREFIX.length);
    // Only mount-shaped paths reach Icecast: no "..", no percent escapes, nothing under /admin.
    const known = opts.isMount ? opts.isMount(mount) : true;
    if (!isValidMountPath(mount) || mount === '/admin' || mount.startsWith('/admin/') || !known) {
      return { kind: 'reject', status: 404, reason: 'no such stream' };
    }
    if (method === 'GET' || method === 'HEAD') return { kind: 'stream', upstreamTarget: mount + query };
    if (method === 'OPTIONS') return { kind: 'stream-preflight' };
    return { kind: 'reject', status: 405, reason: 'streams answer GET, HEAD and OPTIONS only' };
  }

  return { kind: 'http' };
}

function classifyRelay(method: string, mount: string, query: string, opts: ClassifyOptions): Classification {
  // From outside the route does not exist: it would let anyone pull from the master directly.
  const known = opts.isMount ? opts.isMount(mount) : true;
  if (!opts.fromLoopback || !isValidMountPath(mount) || !known) return { kind: 'reject', status: 404, reason: 'no such stream' };
  if (method !== 'GET') return { kind: 'reject', status: 405, reason: 'relays answer GET only' };
  return { kind: 'relay', upstreamTarget: mount + query };
}

/** Audio formats a listener can follow across an upstream reconnect (frame-synced or chained). */
export function isContinuable(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const type = mediaType(contentType);
  return CONTINUABLE_TYPES.has(type);
}

const CONTINUABLE_TYPES = new Set([
  'audio/mpeg',
  'audio/mp3',
  'audio/aac',
  'audio/aacp',
  'application/ogg',
  'audio/ogg',
  'audio/opus',
  'audio/vorbis',
]);
