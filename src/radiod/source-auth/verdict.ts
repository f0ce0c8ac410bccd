import { createHash, timingSafeEqual } from 'node:crypto';
import type { Mount } from '../../coordination/mount.js';

/**
 * Icecast asks radiod about every source client (and every mount-level admin request, such as a
 * source's metadata update) through its URL authenticator (`stream_auth`), as an
 * `application/x-www-form-urlencoded` POST: action, mount, ip, server, port, user, pass, and
 * `admin=1` when the request's URI is not the mount (see judgeSourceAuth). Answering from
 * radiod's live state is what makes fencing take effect at once: no config reload stands
 * between "this node may no longer take sources" and Icecast refusing them (see coordination/fencing-budget.ts). Pure.
 */
export interface SourceAuthRequest {
  action: string | null;
  mount: string | null;
  user: string | null;
  pass: string | null;
  admin: boolean;
}

export type SourceAuthVerdict =
  | { allow: true }
  | { allow: false; reason: 'malformed request' | 'unknown mount' | 'wrong credentials' | 'not master' };

/** A field given twice is ambiguous (which password counts?): such a form is malformed as a whole. */
export function parseSourceAuthForm(body: string): SourceAuthRequest {
  const form = new URLSearchParams(body);
  const one = (name: string): string | null => (form.getAll(name).length === 1 ? form.get(name) : null);
  const ambiguous = ['action', 'mount', 'user', 'pass', 'admin'].some((name) => form.getAll(name).length > 1);
  return {
    action: ambiguous ? null : one('action'),
    mount: one('mount'),
    user: one('user'),
    pass: one('pass'),
    admin: one('admin') === '1',
  };
}

/**
 * A source is let in only with its mount's own credentials and only while this node may take
 * sources (elected, lease confirmed, any takeover wait over). So is an admin request: Icecast
 * flags a request `admin=1` whenever its raw URI differs from the mount it decoded, so a source
 * sent to `/%74est` arrives here as an admin request for `/test` (measured with icecast2 2.4.4),
 * and letting admin requests through on credentials alone would let a non-master take sources.
 * Metadata updates reach the master through the front door, which is the only place they count.
 */
export function judgeSourceAuth(
  req: SourceAuthRequest,
  mounts: ReadonlyMap<string, Mount>,
  mayTakeSources: boolean,
): SourceAuthVerdict {
  if (req.action !== 'stream_auth' || req.mount === null || req.user === null || req.pass === null) {
    return { allow: false, reason: 'malformed request' };
  }
  const mount = mounts.get(req.mount);
  // A mount pulled from an outside URL takes no source anywhere.
  if (mount === undefined || mount.relayUrl !== undefined) return { allow: false, reason: 'unknown mount' };
  if (!(sameSecret(req.user, mount.username) && sameSecret(req.pass, mount.password))) return { allow: false, reason: 'wrong credentials' };
  if (!mayTakeSources) return { allow: false, reason: 'not master' };
  return { allow: true };
}

/** Compared by digest: the time taken says nothing about how much of a guess was right. */
function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}
