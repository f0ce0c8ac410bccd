import { once } from 'node:events';
import { createLogger, type Logger } from '../common/logger.js';
import { createMetrics, type Metrics } from '../common/metrics.js';
import { PrometheusRegistry } from '../common/prometheus.js';
import { startMetricsServer } from '../common/metrics-server.js';
import { errorMessage } from '../common/errors.js';
import { isEntryPoint } from '../common/entry-point.js';
import { Shutdown } from '../common/shutdown.js';
import { connectEtcd } from '../coordination/client.js';
import { ClusterView, type ClusterStateSource } from '../coordination/cluster-view.js';
import type { ClusterState } from '../coordination/cluster-state.js';
import { startPeerInformedView } from '../coordination/peer-informed-view.js';
import { parsePolicy } from './balancer/policy.js';
import { Balancer } from './balancer/balancer.js';
import { buildHttpApp, type HttpApp } from './http/app.js';
import { createFrontDoor, type FrontDoor } from './http/front-door.js';
import { masterIcecast, type HostPort } from '../coordination/host-port.js';
import { startDnsServer } from './dns/server.js';
import { registerClusterGauges } from './cluster-metrics.js';
import { openAccessLog, type AccessLog } from './access/access-log.js';
import { parseRedirectordOptions, type RedirectordOptions } from './options.js';
import { inheritedSocket, inheritedSockets } from '../common/systemd-sockets.js';
import { startHttps } from './https.js';
import { registerCertificateGauge } from './tls/certificate-metrics.js';
import { startAcme, type RunningAcme } from './acme.js';

/** Longest orderly shutdown before redirectord exits anyway. */
const FORCE_EXIT_AFTER_MS = 5000;
/** Longest wait at shutdown for requests already accepted to arrive before their connections are cut. */
const PENDING_HEAD_GRACE_MS = 2000;

/** The master's Icecast as seen from this node: sources are spliced to it. */
function masterFrom(state: ClusterState, nodeName: string, ownAddresses: readonly string[]): HostPort | undefined {
  return masterIcecast(state.master, state.nodes.get(nodeName)?.addresses ?? ownAddresses);
}

/**
 * Tells the front door when the master changes, so it can move its sources and relays. `routing`
 * is the view the front door routes by: etcd's, or the peers' word while cut from etcd.
 */
function followMaster(
  routing: ClusterStateSource,
  frontDoor: { onMasterChange(): void },
  o: { nodeName: string; ownAddresses: readonly string[]; log: Logger; metrics: Metrics },
): void {
  // The name counts too: a new master on the same address is still a master change.
  const masterKey = (state: ClusterState) => JSON.stringify([state.master?.name, masterFrom(state, o.nodeName, o.ownAddresses)]);
  let lastMaster = masterKey(routing.current());
  routing.onChange((state) => {
    const now = masterKey(state);
    if (now !== lastMaster) {
      o.log.info({ master: state.master?.name }, 'master changed; moving sources and relays');
      o.metrics.increment('master_changes');
      lastMaster = now;
      frontDoor.onMasterChange();
    }
  });
}

/**
 * Port 80's front door: sources to the master's Icecast, listeners to the local one, and the
 * local Icecast's relays to the master's, whoever it is (none while this node is master). It
 * routes by etcd's view, or by the peers' word on the master while this node is cut from etcd.
 */
function frontDoorOf(
  view: ClusterView,
  opts: RedirectordOptions,
  parts: Pick<HttpApp, 'server' | 'answerListener'> & { accessLog: AccessLog | undefined; log: Logger; metrics: Metrics },
  running: Running,
): FrontDoor {
  const { accessLog, log, metrics } = parts;
  const ownAddresses = opts.ip ?? [];
  const { routing, lookup } = startPeerInformedView(view, {
    nodeName: opts.name,
    ownAddresses,
    httpPort: opts.httpPort,
    log: log.child({ component: 'peer-master' }),
    metrics,
  });
  running.peers = lookup;
  const frontDoor = createFrontDoor({
    httpServer: parts.server,
    master: () => masterFrom(routing.current(), opts.name, ownAddresses),
    relayUpstream: () => {
      const state = routing.current();
      return state.master?.name === opts.name ? undefined : masterFrom(state, opts.name, ownAddresses);
    },
    localIcecast: { host: opts.icecastHost, port: opts.icecastPort },
    log: log.child({ component: 'front-door' }),
    metrics,
    streamProxy: opts.enableIcecastProxy,
    answerListener: parts.answerListener,
    isMount: (path) => view.current().mounts.has(path),
    adminPassword: () => view.current().icecastAdminPassword,
    // The node's --max-listeners, as its radiod reports it: Icecast no longer sees them one by one.
    maxListeners: () => view.current().nodes.get(opts.name)?.maxListeners,
    onStreamEnd: accessLog && ((session) => accessLog.record(session)),
  });
  followMaster(routing, frontDoor, { nodeName: opts.name, ownAddresses, log, metrics });
  return frontDoor;
}

/** What start-up has made so far: a signal may come at any await of it. */
interface Running {
  app?: { close(): Promise<unknown> | unknown };
  frontDoor?: { close(): void; destroyConnections(): void; counts(): { pendingHeads: number } };
  https?: { close(): void; certificate(): { notAfter: Date } | undefined };
  dns?: { close(): Promise<unknown> | unknown };
  accessLog?: AccessLog;
  acme?: RunningAcme;
  peers?: { stop(): void };
}

interface Basics {
  view: ClusterView;
  client: { close(): void };
  metrics: { close(): unknown };
  metricsServer: { close(): Promise<void> } | undefined;
}

/**
 * Stops accepting, then cuts the connections left. A connection accepted just before the close
 * usually has its request on the way: it is read and answered first (a short grace), since under
 * socket activation the next redirectord takes every later connection and a restart should drop
 * none. Idle keep-alives and heads still dribbling after the grace are cut.
 */
async function closeFrontDoor(running: Running): Promise<void> {
  running.https?.close();
  running.frontDoor?.close();
  const deadline = Date.now() + PENDING_HEAD_GRACE_MS;
  while ((running.frontDoor?.counts().pendingHeads ?? 0) > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  running.frontDoor?.destroyConnections();
}

/** The stop order, declared once: the front door first, so no new connections while the rest closes. */
function shutdownSteps(shutdown: Shutdown, b: Basics, running: Running): Shutdown {
  return shutdown
    .step('front door', () => closeFrontDoor(running))
    .step('access log', () => running.accessLog?.close())
    .step('dns', () => running.dns?.close())
    .step('http app', () => running.app?.close())
    .step('acme', () => running.acme?.stop())
    .step('peer master lookup', () => running.peers?.stop())
    .step('cluster view', () => b.view.stop())
    .step('metrics server', () => b.metricsServer?.close())
    .step('statsd', () => b.metrics.close())
    .step('etcd client', () => b.client.close());
}

export async function main(argv: string[]): Promise<void> {
  let opts;
  try {
    opts = parseRedirectordOptions(argv);
  } catch (err) {
    process.stderr.write(`redirectord: ${errorMessage(err)}\n`);
    process.exit(2);
  }
  const log = createLogger('redirectord', opts.logLevel, opts.logFormat).child({ node: opts.name });
  let policy;
  try {
    policy = parsePolicy(opts.lbPolicy);
  } catch (err) {
    process.stderr.write(`redirectord: ${errorMessage(err)}\n`);
    process.exit(2);
  }
  const registry = new PrometheusRegistry();
  const metrics = createMetrics(
    opts.statsd,
    'redirectord',
    opts.name,
    (err) => log.debug({ err: err.message }, 'statsd send failed'),
    registry,
  );
  // Before anything slow: a scraper sees the daemon (and etcd_connected 0) even while etcd is down.
  // A taken metrics port must not keep the front door and DNS from serving.
  const metricsServer = await startMetricsServer(opts.metricsListen, registry, log.child({ component: 'metrics' })).catch(
    (err: unknown) => {
      log.error({ err: errorMessage(err) }, 'Prometheus metrics disabled');
      return undefined;
    },
  );
  const client = connectEtcd(opts);
  const view = new ClusterView(client, log.child({ component: 'cluster-view' }));
  registerClusterGauges(registry, view, metrics, opts.name);
  const running: Running = {};
  // Signals are handled from here on: a SIGTERM while etcd is still being read stops cleanly.
  const shutdown = shutdownSteps(new Shutdown(log, FORCE_EXIT_AFTER_MS), { view, client, metrics, metricsServer }, running).onSignals();
  await view.start();
  if (shutdown.stopping) return;

  const { app, server, answerListener } = await buildHttpApp({
    state: view,
    domain: opts.domain,
    nodeName: opts.name,
    balancer: new Balancer(policy),
    enableIcecastProxy: opts.enableIcecastProxy,
    log: log.child({ component: 'http' }),
    metrics,
    httpPort: opts.httpPort,
    httpsPort: opts.httpsPort === 0 ? undefined : opts.httpsPort,
    // HTTPS starts after the app: the certificate is looked up when a status is asked for.
    certificate: () => running.https?.certificate(),
  });
  running.app = app;
  if (shutdown.stopping) return;
  const accessLog = (running.accessLog = openAccessLog(opts.accessLog, log.child({ component: 'access-log' })));
  const frontDoor = frontDoorOf(view, opts, { server, answerListener, accessLog, log, metrics }, running);
  // Under systemd socket activation the port-80 socket outlives this process: a restart
  // refuses no connection (they wait in the socket's backlog). Otherwise: bind it here.
  const inherited = inheritedSocket(inheritedSockets(process.env, process.pid), 'http');
  if (inherited) frontDoor.listen({ fd: inherited.fd });
  else if (opts.httpBind) frontDoor.listen(opts.httpPort, opts.httpBind);
  else frontDoor.listen(opts.httpPort);
  running.frontDoor = frontDoor;
  await once(frontDoor, 'listening');
  if (shutdown.stopping) return;
  const https = await startHttps({
    port: opts.httpsPort,
    bind: opts.httpBind,
    certFile: opts.tlsCert,
    keyFile: opts.tlsKey,
    ...(opts.acmeDirectory ? { cluster: { domain: opts.domain, view } } : {}),
    frontDoor,
    log: log.child({ component: 'https' }),
    metrics,
  });
  running.https = https;
  if (https) registerCertificateGauge(registry, () => https.certificate());
  if (shutdown.stopping) return void https?.close();

  const dns = await startDnsServer({
    host: opts.dnsBind,
    port: opts.dnsPort,
    state: view,
    zone: { domain: opts.domain, nameservers: opts.nameservers, ttl: opts.dnsTtl },
    log: log.child({ component: 'dns' }),
    metrics,
  });
  running.dns = dns;
  // The stop steps may have passed 'dns' while it was starting.
  if (shutdown.stopping) return void (await dns.close());
  // After the DNS: the orderer's challenge values must be answerable before it orders.
  running.acme = await startAcme(opts, { client, view, log: log.child({ component: 'acme' }), metrics });
  if (shutdown.stopping) return void (await running.acme?.stop());
  log.info({ httpPort: opts.httpPort, dnsPort: dns.udpPort, domain: opts.domain }, 'redirectord started');
}

if (isEntryPoint(import.meta.url)) {
  main(process.argv).catch((err: unknown) => {
    process.stderr.write(`redirectord: ${errorMessage(err)}\n`);
    process.exit(1);
  });
}
