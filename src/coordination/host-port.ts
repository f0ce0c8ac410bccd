import { isIP } from 'node:net';
import type { MasterInfo } from './cluster-state.js';

/** A TCP endpoint: an IP address (or name) and a port. */
export interface HostPort {
  host: string;
  port: number;
}

export function sameHostPort(a: HostPort | undefined, b: HostPort | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.host === b.host && a.port === b.port);
}

/**
 * The one rule for reaching the master's Icecast from a node: an address of an IP family the
 * node itself has, else the master's first address. Relays, the source proxy and transcoders all
 * use it, so "the master's address" and "the master changed" mean the same everywhere.
 */
export function masterIcecast(master: MasterInfo | undefined, ownAddresses: readonly string[]): HostPort | undefined {
  if (!master) return undefined;
  const host = reachableAddress(master.addresses, ownAddresses);
  return host === undefined ? undefined : { host, port: master.icecastPort };
}

/** Of a peer's addresses, the one this node reaches it at: the first of a family the node has, else the first. */
export function reachableAddress(addresses: readonly string[], ownAddresses: readonly string[]): string | undefined {
  const ownFamilies = new Set(ownAddresses.map((a) => isIP(a)).filter((f) => f !== 0));
  return addresses.find((a) => ownFamilies.has(isIP(a))) ?? addresses[0];
}
