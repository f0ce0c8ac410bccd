import type { ClusterStateSource } from '../coordination/cluster-view.js';
import type { Metrics } from '../common/metrics.js';
import type { PrometheusRegistry } from '../common/prometheus.js';

/**
 * Cluster-wide gauges rebuilt from the watched cluster view at every scrape, so any one
 * redirectord answers for the whole cluster: listeners per node and mount, live nodes, the
 * master, and whether etcd is reachable. Also counts losses of etcd (statsd and Prometheus).
 */
export function registerClusterGauges(registry: PrometheusRegistry, view: ClusterStateSource, metrics: Metrics): () => void {
  registry.describe('autoradio_listeners', 'gauge', 'Listeners per node and mount, as last reported by each node');
  registry.describe('autoradio_node_up', 'gauge', '1 while the node is present in etcd, 0 once it left');
  registry.describe('autoradio_master', 'gauge', '1 for the elected master');
  registry.describe('autoradio_mounts', 'gauge', 'Configured mounts');
  registry.describe('autoradio_etcd_connected', 'gauge', '1 while the cluster view is in sync with etcd');
  registry.describe('autoradio_etcd_unreachable_total', 'counter', 'Times the cluster view lost etcd');
  registry.describe('autoradio_master_changes_total', 'counter', 'Times the master (and so the source target) changed');

  // Nodes that left are reported as 0 rather than vanishing, so alerts can fire on them.
  const seen = new Set<string>();
  const removeCollector = registry.addCollector(() => {
    const state = view.current();
    registry.reset('autoradio_listeners');
    registry.reset('autoradio_node_up');
    registry.reset('autoradio_master');
    for (const name of seen) registry.set('autoradio_node_up', 0, { node: name });
    for (const [name, node] of state.nodes) {
      if (seen.size < 1000) seen.add(name);
      registry.set('autoradio_node_up', 1, { node: name });
      for (const [mount, n] of Object.entries(node.mounts)) {
        registry.set('autoradio_listeners', n, { node: name, mount });
      }
    }
    if (state.master) registry.set('autoradio_master', 1, { node: state.master.name });
    registry.set('autoradio_mounts', state.mounts.size);
    registry.set('autoradio_etcd_connected', state.connected ? 1 : 0);
  });

  let connected: boolean | undefined;
  const unsubscribe = view.onChange((state) => {
    if (connected === true && !state.connected) metrics.increment('etcd.unreachable');
    connected = state.connected;
  });
  return () => {
    removeCollector();
    unsubscribe();
  };
}
