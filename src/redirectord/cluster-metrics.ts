import type { ClusterStateSource } from '../coordination/cluster-view.js';
import type { Metrics } from '../common/metrics.js';
import type { PrometheusRegistry } from '../common/prometheus.js';
import { describeCollected } from '../common/metric-catalogue.js';

const CLUSTER_FAMILIES = ['autoradio_cluster_listeners', 'autoradio_cluster_node_up', 'autoradio_cluster_master', 'autoradio_cluster_mounts'];

/**
 * Gauges rebuilt from the watched cluster view at every scrape. `autoradio_etcd_connected` is this
 * daemon's own link to etcd, exported by every node. The cluster-wide families
 * (`autoradio_cluster_*`: listeners per node and mount, nodes present, the master, mounts) are
 * exported only by the redirectord of the node its view names master, so that a sum over all
 * scraped nodes counts each listener once; during a change of master, one scrape may miss them
 * or see two. Also counts losses of etcd (statsd and Prometheus).
 */
export function registerClusterGauges(registry: PrometheusRegistry, view: ClusterStateSource, metrics: Metrics, nodeName: string): () => void {
  describeCollected(registry, 'autoradio_etcd_connected', ...CLUSTER_FAMILIES);

  // Nodes that left are reported as 0 rather than vanishing, so alerts can fire on them; a node
  // an operator forgot (radioctl forget-node) is no longer expected and leaves the series.
  const seen = new Set<string>();
  const removeCollector = registry.addCollector(() => {
    const state = view.current();
    for (const family of CLUSTER_FAMILIES) registry.reset(family);
    registry.set('autoradio_etcd_connected', state.connected ? 1 : 0);
    for (const name of state.nodes.keys()) if (seen.size < 1000) seen.add(name);
    for (const name of state.forgotten ?? []) if (!state.nodes.has(name)) seen.delete(name);
    if (state.master?.name !== nodeName) return;
    for (const name of seen) registry.set('autoradio_cluster_node_up', 0, { node: name });
    for (const [name, node] of state.nodes) {
      registry.set('autoradio_cluster_node_up', 1, { node: name });
      for (const [mount, n] of Object.entries(node.mounts)) {
        registry.set('autoradio_cluster_listeners', n, { node: name, mount });
      }
    }
    registry.set('autoradio_cluster_master', 1, { node: state.master.name });
    registry.set('autoradio_cluster_mounts', state.mounts.size);
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
