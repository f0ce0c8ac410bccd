import type { Mount } from '../../coordination/mount.js';
import { isValidMountPath } from '../../coordination/mount.js';
import { PLAYLIST_FORMATS, type PlaylistFormat } from './playlists.js';

export type ListenerRequest =
  | { kind: 'stream'; mount: Mount; query: string }
  | { kind: 'playlist'; mount: Mount; format: PlaylistFormat }
  | { kind: 'unknown' };

/**
 * Maps a request target to a mount or a mount's playlist. A configured mount wins over the
 * playlist reading, so a mount may itself end in `.m3u`. Anything that is not a valid,
 * configured mount path is `unknown` (404), never an exception.
 */
export function resolveListenerRequest(rawUrl: string, mounts: ReadonlyMap<string, Mount>): ListenerRequest {
  const qIdx = rawUrl.indexOf('?');
  const rawPath = qIdx === -1 ? rawUrl : rawUrl.slice(0, qIdx);
  const query = qIdx === -1 ? '' : rawUrl.slice(qIdx + 1);
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    return { kind: 'unknown' };
  }
  if (isValidMountPath(path)) {
    const mount = mounts.get(path);
    if (mount) return { kind: 'stream', mount, query };
  }
  for (const format of PLAYLIST_FORMATS) {
    const suffix = `.${format.extension}`;
    if (!path.endsWith(suffix)) continue;
    const base = path.slice(0, -suffix.length);
    if (!isValidMountPath(base)) return { kind: 'unknown' };
    const mount = mounts.get(base);
    return mount ? { kind: 'playlist', mount, format } : { kind: 'unknown' };
  }
  return { kind: 'unknown' };
}
