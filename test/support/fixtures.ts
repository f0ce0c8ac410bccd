import type { NodeStatus } from '../../src/coordination/node-status.js';
import { foldLabels, type Labels, type Metrics } from '../../src/common/metrics.js';

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

/** Metrics that remember what was sent (labels folded into the name, as statsd gets them). */
export class RecordingMetrics implements Metrics {
  readonly counts = new Map<string, number>();
  readonly gauges = new Map<string, number>();
  increment(name: string, value = 1, labels?: Labels): void {
    const key = foldLabels(name, labels);
    this.counts.set(key, (this.counts.get(key) ?? 0) + value);
  }
  gauge(name: string, value: number, labels?: Labels): void {
    this.gauges.set(foldLabels(name, labels), value);
  }
  timing(): void {}
  async close(): Promise<void> {}
  count(name: string): number {
    return this.counts.get(name) ?? 0;
  }
}

/** A deterministic [0, 1) source (mulberry32), so a failing random test can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
