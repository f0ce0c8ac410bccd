/**
 * Where a node's Icecast relays a mount from: its own front door, at `/_relay<mount>`, which
 * pulls from whichever Icecast is master now and follows a new master without closing. radiod
 * renders the relays and redirectord serves the route, so the path lives here, shared.
 */
export const RELAY_PREFIX = '/_relay';

/** The request path the local Icecast's relay of `mount` asks the front door for. */
export function relayPath(mount: string): string {
  return `${RELAY_PREFIX}${mount}`;
}
