import type { HostPort } from '../coordination/host-port.js';
import { FRONT_DOOR_LISTENERS_PATH, parseFrontDoorListeners, type FrontDoorListeners } from '../coordination/front-door-listeners.js';

/**
 * The local front door's `/_stream` listener counts (answered to this host only). Undefined when
 * it does not answer: a front door that is down serves no listener, so Icecast's own count
 * (where its feeds ended too) is then the truth.
 */
export async function fetchFrontDoorListeners(frontDoor: HostPort, timeoutMs: number): Promise<FrontDoorListeners | undefined> {
  const host = frontDoor.host.includes(':') ? `[${frontDoor.host}]` : frontDoor.host;
  try {
    const res = await fetch(`http://${host}:${frontDoor.port}${FRONT_DOOR_LISTENERS_PATH}`, { signal: AbortSignal.timeout(timeoutMs) });
    const body = await res.text();
    return res.ok ? parseFrontDoorListeners(body) : undefined;
  } catch {
    return undefined;
  }
}
