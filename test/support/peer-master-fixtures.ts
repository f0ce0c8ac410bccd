import { pino } from 'pino';
import type { ClusterState } from '../../src/coordination/cluster-state.js';
import { PeerMasterLookup } from '../../src/coordination/peer-master-lookup.js';
import { RecordingMetrics } from './fixtures.js';

/** A cluster view whose state the test sets, published as ClusterView would. */
export class SettableView {
  #listeners = new Set<(s: ClusterState) => void>();
  constructor(private s: ClusterState) {}
  current(): ClusterState {
    return this.s;
  }
  onChange(l: (s: ClusterState) => void): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }
  set(s: ClusterState): void {
    this.s = s;
    for (const l of this.#listeners) l(s);
  }
}

/** The lookup of node n1 (at 127.0.0.1 / 10.0.0.1 alike: only the family counts), not started. */
export function lookupOfN1(
  view: SettableView,
  o: { httpPort?: number; ownAddress?: string; ask?: (address: string, port: number) => Promise<string> } = {},
): PeerMasterLookup {
  return new PeerMasterLookup({
    view,
    nodeName: 'n1',
    ownAddresses: [o.ownAddress ?? '127.0.0.1'],
    httpPort: o.httpPort ?? 80,
    log: pino({ level: 'silent' }),
    metrics: new RecordingMetrics(),
    ...(o.ask ? { ask: o.ask } : {}),
  });
}
