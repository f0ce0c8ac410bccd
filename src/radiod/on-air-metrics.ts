import type { PrometheusRegistry } from '../common/prometheus.js';
import { describeCollected } from '../common/metric-catalogue.js';
import type { IcecastStats } from './icecast/stats.js';

const FAMILY = 'autoradio_mount_on_air';

/**
 * Per configured mount, 1 if the master's Icecast lists it (a source is connected: Icecast's
 * stats list only mounts with a source), else 0. Undefined off the master, where relays make
 * every mount look alive, and while the local Icecast does not answer: no answer is not "off air".
 */
export function onAirByMount(isMaster: boolean, configured: Iterable<string>, stats: Pick<IcecastStats, 'mounts'> | undefined): Map<string, number> | undefined {
  if (!isMaster || !stats) return undefined;
  const live = new Set(stats.mounts.map((m) => m.mount));
  return new Map([...configured].map((mount) => [mount, live.has(mount) ? 1 : 0]));
}

/** Keeps `autoradio_mount_on_air` equal to the last poll's answer; exported by the master only. */
export class OnAirGauge {
  constructor(private readonly registry: PrometheusRegistry | undefined) {
    if (registry) describeCollected(registry, FAMILY);
  }

  update(onAir: Map<string, number> | undefined): void {
    if (!this.registry) return;
    this.registry.reset(FAMILY);
    for (const [mount, value] of onAir ?? []) this.registry.set(FAMILY, value, { mount });
  }
}
