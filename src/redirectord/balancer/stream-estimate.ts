import type { NodeStatus } from '../../coordination/node-status.js';
import type { BalancerContext } from './types.js';

/** Assumed bitrate of a stream when neither the mount nor the node's traffic tells. */
export const DEFAULT_STREAM_KBPS = 128;

/**
 * Outbound kbit/s one more listener costs on `node`: the mount's own bitrate when known,
 * else the node's current average per listener, else a typical MP3 stream.
 */
export function streamKbpsEstimate(node: NodeStatus, ctx: BalancerContext): number {
  if (ctx.bitrateKbps !== undefined && ctx.bitrateKbps > 0) return ctx.bitrateKbps;
  if (node.listeners > 0 && node.bandwidthKbps > 0) return node.bandwidthKbps / node.listeners;
  return DEFAULT_STREAM_KBPS;
}
