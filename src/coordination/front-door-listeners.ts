import { Ajv } from 'ajv';
import { formatAjvErrors } from './mount.js';

/**
 * What redirectord's front door tells radiod on this node about its `/_stream` listeners
 * (`GET /_listeners`, answered to this host only). Icecast sees one connection per mount (the
 * front door's feed) however many listeners it carries, so this is the listener count of those
 * mounts, and the feeds are subtracted from Icecast's own count.
 */
export interface FrontDoorListeners {
  /** Listeners per mount path (mounts without any left out). */
  mounts: Record<string, number>;
  /** Connections the front door holds to the local Icecast, per mount path. */
  feeds: Record<string, number>;
}

/** The path of the answer on the front door. */
export const FRONT_DOOR_LISTENERS_PATH = '/_listeners';

const schema = {
  type: 'object',
  required: ['mounts', 'feeds'],
  additionalProperties: false,
  properties: {
    mounts: { type: 'object', maxProperties: 100_000, additionalProperties: { type: 'integer', minimum: 0 } },
    feeds: { type: 'object', maxProperties: 100_000, additionalProperties: { type: 'integer', minimum: 0 } },
  },
} as const;

const validate = new Ajv({ allErrors: true }).compile<FrontDoorListeners>(schema);

export function parseFrontDoorListeners(json: string): FrontDoorListeners {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new Error(`front door listeners: not JSON: ${(err as Error).message}`);
  }
  if (!validate(value)) throw new Error(`front door listeners: ${formatAjvErrors(validate.errors)}`);
  return value;
}

/**
 * Icecast's listeners per mount (relays and other non-people already taken out) merged with the
 * front door's: a mount's feeds are not people, its front door listeners are. Pure.
 */
export function mergeFrontDoorListeners(
  icecast: Readonly<Record<string, number>>,
  frontDoor: FrontDoorListeners | undefined,
): Record<string, number> {
  if (!frontDoor) return { ...icecast };
  const merged: Record<string, number> = {};
  const paths = new Set([...Object.keys(icecast), ...Object.keys(frontDoor.mounts), ...Object.keys(frontDoor.feeds)]);
  for (const path of paths) {
    const direct = Math.max(0, (icecast[path] ?? 0) - (frontDoor.feeds[path] ?? 0));
    const total = direct + (frontDoor.mounts[path] ?? 0);
    if (total > 0) merged[path] = total;
  }
  return merged;
}
