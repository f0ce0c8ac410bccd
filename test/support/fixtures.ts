import type { NodeStatus } from '../../src/coordination/node-status.js';

/** A live, healthy node status for pure tests; override what the test is about. */
export function nodeStatus(name: string, over: Partial<NodeStatus> = {}): NodeStatus {
  return {
    name,
    addresses: ['192.0.2.1'],
    icecastPort: 8000,
    icecastOk: true,
    mounts: {},
    listeners: 0,
    bandwidthKbps: 0,
    maxListeners: 100,
    maxBandwidthKbps: 0,
    reportedAt: 0,
    ...over,
  };
}
