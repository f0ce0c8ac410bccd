import { isIP } from 'node:net';
import type { NodeFilter } from './types.js';
import { streamKbpsEstimate } from './stream-estimate.js';

/** Listeners below the node's maximum (0 means unlimited). */
export const listenersAvailable: NodeFilter = {
  name: 'listeners_available',
  keep: (node) => node.maxListeners === 0 || node.listeners < node.maxListeners,
};

/** Room for one more stream within the node's outbound limit (0 means unlimited). */
export const bandwidthAvailable: NodeFilter = {
  name: 'bandwidth_available',
  keep: (node, ctx) =>
    node.maxBandwidthKbps === 0 || node.bandwidthKbps + streamKbpsEstimate(node, ctx) < node.maxBandwidthKbps,
};

/** The node's Icecast answered its last status poll. */
export const icecastOk: NodeFilter = {
  name: 'icecast_ok',
  keep: (node) => node.icecastOk,
};

/** The node has an address the listener can reach with its own IP family. */
export const sameIpFamily: NodeFilter = {
  name: 'same_ip_family',
  keep: (node, ctx) => node.addresses.some((a) => isIP(a) === ctx.clientFamily),
};

export const FILTERS: readonly NodeFilter[] = [listenersAvailable, bandwidthAvailable, icecastOk, sameIpFamily];
