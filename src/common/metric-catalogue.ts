import type { MetricType, PrometheusRegistry } from './prometheus.js';

/**
 * What each event name given to `Metrics` becomes in Prometheus, with the HELP text that says
 * what it counts. One table, so that every series has a real HELP, a base unit (`_seconds`,
 * `_bytes`) and one meaning, and so that tests and the shipped dashboard and alert rules can be
 * checked against the names the code exports. Names used with `Metrics` that are missing here
 * still export (`autoradio_<name>_total` / `autoradio_<name>`), with a generic HELP that the
 * scrape test refuses.
 */
export interface EventMetric {
  /** The Prometheus family name. */
  name: string;
  type: MetricType;
  help: string;
}

const counter = (name: string, help: string): EventMetric => ({ name: `autoradio_${name}_total`, type: 'counter', help });
const gauge = (name: string, help: string): EventMetric => ({ name: `autoradio_${name}`, type: 'gauge', help });
/** Timings are given in milliseconds and exported in seconds. */
const seconds = (name: string, help: string): EventMetric => ({ name: `autoradio_${name}_seconds`, type: 'summary', help });

export const COUNTERS: Readonly<Record<string, EventMetric>> = {
  'front_door.accept_error': counter('front_door_accept_error', 'Errors of the public listening socket (such as running out of file descriptors)'),
  'front_door.rejected': counter('front_door_rejected', 'Connections on the public port refused, by reason'),
  'front_door.preflight': counter('front_door_preflight', 'CORS preflight requests answered by the front door'),
  'front_door.redirect': counter('front_door_redirect', 'Listener requests the front door answered itself (redirect or playlist) without the HTTP server'),
  'front_door.http': counter('front_door_http', 'Connections the front door handed to the HTTP server (status page, other requests)'),
  'front_door.source': counter('front_door_source', 'Source connections the front door proxied to the master'),
  'front_door.source.no_master': counter('front_door_source_no_master', 'Source connections refused because there was no master'),
  'front_door.stream': counter('front_door_stream', 'Listener connections the front door proxied through /_stream'),
  'front_door.bytes': counter('front_door_bytes', 'Bytes the front door relayed, by kind (source, stream, relay) and direction (in, out)'),
  'front_door.tls.handshake': counter('front_door_tls_handshake', 'TLS handshakes completed on the HTTPS port'),
  'front_door.tls.rejected': counter('front_door_tls_rejected', 'TLS connections closed before or during the handshake, by reason'),
  'tls.certificate_loaded': counter('tls_certificate_loaded', 'Certificate and key pairs loaded into the HTTPS port'),
  'acme.orders': counter('acme_orders', 'ACME orders of the cluster certificate finished by this node, by result (issued, failed)'),
  'tls.certificate_refused': counter('tls_certificate_refused', 'Certificate files refused (corrupt, expired, key not matching); the last good pair stays'),
  'front_door.relay': counter('front_door_relay', "Relay connections of the local Icecast the front door proxied to the master (/_relay)"),
  'http.redirect': counter('http_redirect', 'Listener requests redirected, by the node chosen'),
  'http.unavailable': counter('http_unavailable', 'Listener requests answered 503 because no node could take them'),
  'http.playlist': counter('http_playlist', 'Playlists served, by format'),
  'http.not_found': counter('http_not_found', 'Listener requests for a mount that does not exist'),
  'http.status_page': counter('http_status_page', 'Status page and status.json requests'),
  'source_proxy.upstream_error': counter('source_proxy_upstream_error', 'Source connections to the master Icecast that failed'),
  'source_proxy.hold': counter('source_proxy_hold', 'Times a source was held while its upstream Icecast was replaced'),
  'source_proxy.reattach': counter('source_proxy_reattach', 'Held sources reattached to an upstream Icecast'),
  'source_proxy.reattach_failed': counter('source_proxy_reattach_failed', 'Held sources dropped because no upstream took them back in time'),
  'source_proxy.discarded_bytes': counter('source_proxy_discarded_bytes', 'Source bytes dropped while a source was held'),
  'stream_proxy.reattach': counter('stream_proxy_reattach', 'Listener streams moved to another Icecast without closing the listener'),
  'stream_proxy.queue_refused': counter('stream_proxy_queue_refused', 'Listener streams refused because too many were waiting to connect upstream'),
  'stream_proxy.upstream_error': counter('stream_proxy_upstream_error', 'Listener stream connections to an Icecast that failed'),
  'stream_proxy.bridged': counter('stream_proxy_bridged', "Listener feeds fed from the master's Icecast while the local Icecast had nothing (a former master whose relay was not started yet, a local Icecast restarting)"),
  'stream_proxy.reattach_failed': counter('stream_proxy_reattach_failed', 'Listener streams closed because no Icecast took them back in time'),
  'stream_proxy.slow_skipped': counter('stream_proxy_slow_skipped', 'Times a listener fell behind and had audio skipped to catch up (on a frame boundary)'),
  'stream_proxy.slow_dropped': counter('stream_proxy_slow_dropped', 'Listeners dropped because they stayed behind the stream too long'),
  'stream_proxy.no_upstream': counter('stream_proxy_no_upstream', 'Relay requests answered 503 because no master was known'),
  source_auth: counter('source_auth', "Icecast's questions to radiod's source authenticator, by result (allowed, refused)"),
  'master_probe.failed': counter('master_probe_failed', "Probes of the master's Icecast from this node that failed (refused or unanswered)"),
  master_deposed: counter('master_deposed', 'Dead masters this node deposed (it completed the majority and revoked the lease)'),
  'dns.query': counter('dns_query', 'DNS queries received, by query type'),
  'dns.rcode': counter('dns_rcode', 'DNS answers sent, by response code'),
  'dns.dropped': counter('dns_dropped', 'DNS packets dropped unanswered (malformed or over the rate limit)'),
  'dns.truncated': counter('dns_truncated', 'DNS answers truncated to fit UDP'),
  'dns.tcp.connections': counter('dns_tcp_connections', 'DNS TCP connections accepted'),
  'dns.tcp.refused': counter('dns_tcp_refused', 'DNS TCP connections refused over the connection limit'),
  'dns.tcp.evicted': counter('dns_tcp_evicted', 'Idle DNS TCP connections closed to make room for new ones'),
  'dns.errors': counter('dns_errors', 'DNS server socket errors'),
  'etcd.unreachable': counter('etcd_unreachable', 'Times this daemon lost its connection to etcd'),
  master_changes: counter('master_changes', 'Times this daemon saw the master (and so the source target) change'),
  'peer_master.followed': counter('peer_master_followed', 'Times redirectord, cut from etcd, started following a master that peers in touch with etcd reported'),
  'transcoder.elected': counter('transcoder_elected', 'Transcoders this node started running after winning their election'),
  'transcoder.deposed': counter('transcoder_deposed', 'Transcoders this node stopped after losing their election'),
  'transcoder.yielded': counter('transcoder_yielded', 'Transcoders this node handed over on purpose'),
  'errors.icecast_config': counter('errors_icecast_config', 'Icecast configurations that could not be rendered or written'),
  'errors.icecast_reload': counter('errors_icecast_reload', 'Icecast reloads that failed'),
  'errors.icecast_poll': counter('errors_icecast_poll', 'Polls of the local Icecast stats that got no answer'),
  'errors.etcd': counter('errors_etcd', 'etcd operations of radiod that failed'),
  'icecast.config_renders': counter('icecast_config_renders', 'Icecast configurations rendered'),
  'icecast.config_writes': counter('icecast_config_writes', 'Icecast configurations written because they changed'),
  'icecast.reloads': counter('icecast_reloads', 'Icecast reloads (SIGHUP) sent'),
  'icecast.stall_kills': counter('icecast_stall_kills', 'Local Icecasts killed because they ran but answered nothing (--icecast-kill-stalled-after)'),
};

export const GAUGES: Readonly<Record<string, EventMetric>> = {
  'front_door.sources': gauge('front_door_sources', 'Source connections the front door holds now'),
  'front_door.relays': gauge('front_door_relays', "Relay connections of the local Icecast the front door holds now (one per relayed mount)"),
  'front_door.streams': gauge(
    'front_door_streams',
    'Listener connections the front door proxies through /_stream now (not the Icecast count: see autoradio_icecast_listeners)',
  ),
  'stream_proxy.feeds': gauge(
    'stream_proxy_feeds',
    'Connections from the front door to the local Icecast now, one per mount with /_stream listeners (Icecast counts each as one listener)',
  ),
  'transcoders.running': gauge('transcoders_running', 'Transcoders running on this node'),
  is_master: gauge('is_master', '1 while this node holds the master role, 0 otherwise'),
  'icecast.up': gauge('icecast_up', '1 while the local Icecast answers its stats, 0 otherwise'),
  'icecast.listeners': gauge('icecast_listeners', 'Listeners the local Icecast counts, all mounts, relays of other nodes excluded'),
  'icecast.sent_bytes_per_second': gauge('icecast_sent_bytes_per_second', 'Bytes per second the local Icecast sends to its listeners, averaged between stats polls'),
};

export const TIMINGS: Readonly<Record<string, EventMetric>> = {
  'source_proxy.hold': seconds('source_proxy_hold', 'How long held sources waited before reattaching'),
  'icecast.config_propagation': seconds('icecast_config_propagation', 'Time from noticing a cluster change to Icecast running the new configuration'),
};

/** Series a collector builds from another source of truth, described where they are built. */
export const COLLECTED: readonly EventMetric[] = [
  { name: 'autoradio_etcd_connected', type: 'gauge', help: '1 while this daemon\'s view of the cluster is in sync with etcd, 0 otherwise' },
  { name: 'autoradio_cluster_listeners', type: 'gauge', help: 'Listeners per node and mount as each node last reported them; exported by the master node only' },
  { name: 'autoradio_cluster_node_up', type: 'gauge', help: '1 while the node is present in etcd, 0 once it left; exported by the master node only' },
  { name: 'autoradio_cluster_master', type: 'gauge', help: '1 for the elected master node; exported by the master node only' },
  { name: 'autoradio_cluster_mounts', type: 'gauge', help: 'Mounts configured in the cluster; exported by the master node only' },
  { name: 'autoradio_mount_on_air', type: 'gauge', help: '1 while the mount has a source on the master Icecast, 0 otherwise; exported by the master node only' },
  { name: 'autoradio_tls_certificate_expiry_seconds', type: 'gauge', help: 'Seconds until the HTTPS certificate in use expires' },
  { name: 'process_resident_memory_bytes', type: 'gauge', help: 'Resident memory size in bytes' },
  { name: 'process_open_fds', type: 'gauge', help: 'Open file descriptors' },
  { name: 'process_heap_used_bytes', type: 'gauge', help: 'V8 heap in use, bytes' },
  { name: 'process_start_time_seconds', type: 'gauge', help: 'Start time of the process, seconds since the epoch' },
];

/** Written by the registry itself at every render. */
const REGISTRY_OWN = 'autoradio_prometheus_dropped_series_total';

/** Every family name the programs can export (for the dashboard and alert rule checks). */
export function exportedFamilyNames(): Set<string> {
  const all = [...Object.values(COUNTERS), ...Object.values(GAUGES), ...Object.values(TIMINGS), ...COLLECTED];
  return new Set([...all.map((m) => m.name), REGISTRY_OWN]);
}

/** Gives the collected families named here their type and HELP from the table above. */
export function describeCollected(registry: PrometheusRegistry, ...names: string[]): void {
  for (const name of names) {
    const m = COLLECTED.find((c) => c.name === name);
    if (!m) throw new Error(`metric ${name} is not in the catalogue`);
    registry.describe(m.name, m.type, m.help);
  }
}
