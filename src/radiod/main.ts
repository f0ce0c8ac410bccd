import { CommanderError } from 'commander';
import { createLogger, ThrottledLog, type Logger } from '../common/logger.js';
import { createMetrics, type Metrics } from '../common/metrics.js';
import { PrometheusRegistry } from '../common/prometheus.js';
import { startMetricsServer } from '../common/metrics-server.js';
import { OnAirGauge, onAirByMount } from './on-air-metrics.js';
import { errorMessage } from '../common/errors.js';
import { isEntryPoint } from '../common/entry-point.js';
import { Shutdown } from '../common/shutdown.js';
import { connectEtcd, type Etcd3 } from '../coordination/client.js';
import { ClusterView, type ClusterStateSource } from '../coordination/cluster-view.js';
import type { PeerMasterLookup } from '../coordination/peer-master-lookup.js';
import { startPeerInformedView } from '../coordination/peer-informed-view.js';
import { ensureIcecastSecrets, type IcecastSecrets } from '../coordination/icecast-secrets.js';
import { Presence } from '../coordination/presence.js';
import { Elector } from '../coordination/elector.js';
import type { MasterInfo } from '../coordination/cluster-state.js';
import { parseRadiodOptions, radiodCommand, resolveAddresses, type RadiodOptions } from './options.js';
import { TranscoderManager } from './transcoder/manager.js';
import { MasterCandidacy, type MasterRole } from './candidacy.js';
import { IcecastController } from './icecast/controller.js';
import { CommandReloader, SignalReloader, type Reloader } from './icecast/reloader.js';
import { IcecastPid } from './icecast/icecast-pid.js';
import { IcecastStallGuard, stallDelayMs } from './icecast/stall-guard.js';
import { StalledIcecastKiller } from './icecast/stalled-icecast-killer.js';
import { monotonicNow } from '../coordination/clock.js';
import { BandwidthMeter } from './icecast/bandwidth.js';
import type { IcecastNodeSettings } from './icecast/render.js';
import { SourceAuthServer } from './source-auth/server.js';
import { MasterWatch } from './master-watch.js';
import { Deposition } from '../coordination/deposition.js';
import { LeaseFile } from './lease-file.js';
import { RaftLeaderPlacement } from './raft-leader-placement.js';
import {
  StatsPoller,
  fetchIcecastStats,
  icecastAnswers,
  icecastResponds,
  killSource,
  localIcecastUrl,
  type IcecastEndpoint,
  type PollResult,
} from './icecast/stats-poller.js';
import { buildNodeStatus, nonListenerClients } from './node-report.js';
import { fetchFrontDoorListeners } from './front-door-client.js';
import { packageVersion } from '../common/package-version.js';
import { ListenerHistoryWriter } from './listener-history-writer.js';
import { LocalIcecastHealth } from './local-icecast-health.js';
import { CandidacyGate } from './candidacy-gate.js';
import { DrainWatch } from './drain-watch.js';
import { ForgottenMarkerRemover } from './forgotten-marker.js';

/** Consecutive failed polls before the node gives up its candidacy (a restart takes ~1 s). */
const DOWN_AFTER_FAILURES = 3;
/** Longest orderly shutdown before radiod exits anyway. */
const FORCE_EXIT_AFTER_MS = 8000;

/** What every wiring step may use. */
interface Basics {
  opts: RadiodOptions;
  log: Logger;
  throttled: ThrottledLog;
  metrics: Metrics;
  registry: PrometheusRegistry;
  client: Etcd3;
  addresses: string[];
}

function parseOrExit(argv: string[]): RadiodOptions {
  try {
    return parseRadiodOptions(argv, radiodCommand().exitOverride());
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode);
    process.stderr.write(`radiod: ${errorMessage(err)}\n`);
    process.exit(2);
  }
}

/** Passwords first: no useful config can be written without them. Undefined once stopping. */
async function waitForSecrets(b: Basics, shutdown: Shutdown): Promise<IcecastSecrets | undefined> {
  while (!shutdown.stopping) {
    try {
      return await ensureIcecastSecrets(b.client);
    } catch (err) {
      if (shutdown.stopping) return undefined;
      b.throttled.warn('secrets', { err: errorMessage(err) }, 'cannot read the Icecast secrets from etcd; retrying');
      b.metrics.increment('errors.etcd');
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  return undefined;
}

function icecastNodeSettings(opts: RadiodOptions, addresses: string[], sourceAuthUrl: string): IcecastNodeSettings {
  return {
    sourceAuthUrl,
    name: opts.name,
    addresses,
    icecastPort: opts.icecastPort,
    ...(opts.icecastBind ? { bindAddress: opts.icecastBind } : {}),
    hostname: opts.domain,
    maxListeners: opts.maxListeners,
    ...(opts.relayVia !== 'direct' ? { relayVia: opts.relayVia } : {}),
    paths: {
      basedir: opts.icecastBasedir,
      logdir: opts.icecastLogdir,
      webroot: opts.icecastWebroot,
      adminroot: opts.icecastAdminroot,
      ...(opts.icecastPidfile ? { pidfile: opts.icecastPidfile } : {}),
    },
  };
}

/** Drops the local Icecast's sources whose mount `unwanted` names (logged, never thrown). */
async function dropSources(b: Basics, endpoint: IcecastEndpoint, unwanted: (mount: string) => boolean, why: string): Promise<void> {
  const stats = await fetchIcecastStats(endpoint);
  for (const m of stats.mounts) {
    if (!unwanted(m.mount)) continue;
    b.log.info({ mount: m.mount }, why);
    await killSource(endpoint, m.mount).catch((err: unknown) => b.log.warn({ mount: m.mount, err: errorMessage(err) }, 'cannot drop source'));
  }
}

interface IcecastControl {
  controller: IcecastController;
  endpoint: IcecastEndpoint;
  /** Where the local Icecast's pid comes from: for the reloader's SIGHUP and the stall killer. */
  pid: IcecastPid;
  reloader: Reloader;
  /**
   * Drops the sources attached to this Icecast after it stopped being master: they would
   * otherwise stay here, invisible to the rest of the cluster, and block the relays. Their
   * clients reconnect through the front door's proxy, which sends them to the new master.
   */
  dropLocalSources: () => Promise<void>;
}

/**
 * `routing` is the view the relays follow: etcd's, or while this node is cut from etcd the
 * master its peers report (so a fenced master's Icecast relays the new one instead of serving
 * its own listeners silence). Which mounts exist is always the view's.
 */
function icecastControl(b: Basics, view: ClusterView, routing: ClusterStateSource, secrets: IcecastSecrets, sourceAuthUrl: string): IcecastControl {
  const baseUrl = localIcecastUrl(b.opts.icecastPort, b.opts.icecastBind);
  const endpoint: IcecastEndpoint = { baseUrl, adminUser: 'admin', adminPassword: secrets.adminPassword };
  const answers = () => icecastAnswers(baseUrl);
  const pid = new IcecastPid(b.opts.icecastPidfile ? { pidfile: b.opts.icecastPidfile } : {});
  const reloader = b.opts.icecastReload ? new CommandReloader(b.opts.icecastReload, answers, b.log) : new SignalReloader({ pid, answers });
  const servedHere = (path: string) => {
    const mount = view.current().mounts.get(path);
    return mount !== undefined && mount.relayUrl === undefined;
  };
  const dropLocalSources = () => dropSources(b, endpoint, servedHere, 'dropping a local source: this node is no longer master');
  const controller = new IcecastController({
    source: routing,
    node: icecastNodeSettings(b.opts, b.addresses, sourceAuthUrl),
    secrets,
    configPath: b.opts.icecastConfig,
    reloader,
    onDemoted: () => dropLocalSources(),
    // Icecast keeps a connected source even after its <mount> is gone: drop deleted mounts' sources.
    // Not internal mounts: a relay mount still holds listeners that move to the public mount
    // as soon as the source arrives there; the reload removes it afterwards.
    afterMasterReload: () =>
      dropSources(b, endpoint, (m) => !m.startsWith('/_') && !view.current().mounts.has(m), 'dropping the source of a deleted mount'),
    log: b.log.child({ component: 'icecast' }),
    metrics: b.metrics,
  });
  return { controller, endpoint, pid, reloader, dropLocalSources };
}

/**
 * The view with the peers' word on the master while cut from etcd. The peers are asked at their
 * front doors, on the port of this node's own (--relay-via); with relays "direct" there is no
 * front door to go by, and the view is etcd's alone.
 */
function peerInformed(b: Basics, view: ClusterView, running: Partial<Running>): ClusterStateSource {
  const relayVia = b.opts.relayVia;
  if (relayVia === 'direct') return view;
  const { routing, lookup } = startPeerInformedView(view, {
    nodeName: b.opts.name,
    ownAddresses: b.addresses,
    httpPort: relayVia.port,
    log: b.log.child({ component: 'peer-master' }),
    metrics: b.metrics,
  });
  running.peerMaster = lookup;
  return routing;
}

const ROLE_MESSAGES: Record<MasterRole, string> = {
  master: 'this node is master',
  fenced: 'master role fenced: etcd does not confirm it',
  'taking-over': 'first in line after a deposition; waiting out the deposed master',
  none: 'this node is not master',
};

function masterCandidacy(b: Basics, elector: Elector, controller: IcecastController): MasterCandidacy {
  const masterInfo: MasterInfo = { name: b.opts.name, addresses: b.addresses, icecastPort: b.opts.icecastPort };
  // Known from the start, so that "no node is master" is a sum of zeros, not missing data.
  b.metrics.gauge('is_master', 0);
  return new MasterCandidacy(elector, masterInfo, {
    log: b.log.child({ component: 'election' }),
    onChange: (role) => {
      b.log.info({ role }, ROLE_MESSAGES[role]);
      b.metrics.gauge('is_master', role === 'master' ? 1 : 0);
      controller.setRole(role);
    },
  });
}

/**
 * Once this radiod holds its own lease: revoke the lease the previous radiod on this node noted
 * (it died without revoking it), then note ours for the next one.
 */
function revokePredecessorOnGrant(b: Basics, elector: Elector, deposition: Deposition): void {
  const file = new LeaseFile(b.opts.leaseFile, b.log.child({ component: 'lease-file' }));
  let predecessor: Promise<string | undefined> | undefined = file.previous();
  elector.lease.on('granted', (id) => {
    const previous = predecessor;
    predecessor = undefined;
    void (async () => {
      const old = await previous;
      if (old !== undefined) await deposition.revokePredecessor(old).catch((err: unknown) => b.log.warn({ err: errorMessage(err) }, 'cannot revoke the previous lease'));
      await file.record(id);
    })();
  });
}

interface Parts {
  view: ClusterView;
  control: IcecastControl;
  candidacy: MasterCandidacy;
  gate: CandidacyGate;
  presence: Presence;
}

/**
 * Leaves the master election as on a planned stop: a master resigns (the next candidate takes
 * over within milliseconds, and the controller, still running, rewrites icecast.xml as a relay),
 * then the sources still attached here are dropped so that they move through the front doors.
 */
async function resignMaster(candidacy: MasterCandidacy, control: IcecastControl, reason: string): Promise<void> {
  const wasMaster = candidacy.role === 'master' || candidacy.role === 'fenced';
  await candidacy.stop(reason);
  if (wasMaster) await control.dropLocalSources();
}

/**
 * What each stats poll does: start or stop campaigning as the local Icecast comes up or goes
 * down, and publish the node's status.
 */
function onStatsPoll(b: Basics, shutdown: Shutdown, p: Parts): (r: PollResult) => void {
  const health = new LocalIcecastHealth(DOWN_AFTER_FAILURES);
  const bandwidth = new BandwidthMeter();
  const onAir = new OnAirGauge(b.registry);
  const url = p.control.endpoint.baseUrl;
  const version = packageVersion();
  const stalled = new StalledIcecastKiller({
    guard: new IcecastStallGuard(() => stallDelayMs(b.opts.icecastKillStalledAfter, p.view.current().mounts.size)),
    pid: p.control.pid,
    responds: (timeoutMs) => icecastResponds(url, timeoutMs),
    clock: monotonicNow,
    log: b.log.child({ component: 'icecast' }),
    metrics: b.metrics,
    stopping: () => shutdown.stopping,
  });
  return (r) => {
    if (shutdown.stopping) return;
    const change = health.observe(r.stats !== undefined);
    stalled.observe(r.stats !== undefined);
    if (r.stats) b.throttled.clear('icecast-down');
    else {
      b.throttled.warn('icecast-down', { err: r.error, url }, 'local icecast does not answer');
      b.metrics.increment('errors.icecast_poll');
    }
    if (change === 'came-up') {
      bandwidth.reset();
      b.log.info({ url }, 'local icecast is up');
      p.control.controller.icecastStarted();
      p.gate.setIcecastUp(true);
    } else if (change === 'went-down') {
      b.log.warn({ failures: health.consecutiveFailures }, 'local icecast is down');
      p.gate.setIcecastUp(false);
    }
    const { opts } = b;
    const kbps = r.stats ? bandwidth.sample(r.at, r.stats.mounts) : 0;
    const status = buildNodeStatus(
      { name: opts.name, addresses: b.addresses, icecastPort: opts.icecastPort, maxListeners: opts.maxListeners, bandwidthMbps: opts.bandwidth },
      r.stats,
      kbps,
      r.at,
      p.candidacy.role === 'master' || p.candidacy.role === 'fenced' ? nonListenerClients(p.view.current(), opts.name) : {},
      { isMaster: p.candidacy.role === 'master', version, frontDoor: r.frontDoor },
    );
    p.presence.publish(status);
    onAir.update(onAirByMount(p.candidacy.role === 'master', p.view.current().mounts.keys(), r.stats));
    b.metrics.gauge('icecast.up', r.stats ? 1 : 0);
    b.metrics.gauge('icecast.listeners', status.listeners);
    // Icecast's figure is in kbit/s; Prometheus wants base units.
    b.metrics.gauge('icecast.sent_bytes_per_second', (status.bandwidthKbps * 1000) / 8);
  };
}

/** Logger, statsd and Prometheus. Metrics are a convenience: a taken port must not stop radiod. */
async function observability(opts: RadiodOptions) {
  const log = createLogger('radiod', opts.logLevel, opts.logFormat);
  const throttled = new ThrottledLog(log);
  const registry = new PrometheusRegistry();
  const metrics = createMetrics(opts.statsd, 'radiod', opts.name, (err) => throttled.warn('statsd', { err: err.message }, 'statsd send failed'), registry);
  const metricsServer = await startMetricsServer(opts.metricsListen, registry, log.child({ component: 'metrics' })).catch((err: unknown) => {
    log.error({ err: errorMessage(err) }, 'Prometheus metrics disabled');
    return undefined;
  });
  return { log, throttled, metrics, metricsServer, registry };
}

interface Running extends Parts {
  sourceAuth: SourceAuthServer;
  masterWatch: MasterWatch;
  raftPlacement: RaftLeaderPlacement;
  elector: Elector;
  transcoders: TranscoderManager;
  poller: StatsPoller;
  history: ListenerHistoryWriter;
  drainWatch: DrainWatch;
  forgottenMarker: ForgottenMarkerRemover;
  peerMaster: PeerMasterLookup;
}

/**
 * The shutdown order, declared once: stop serving first, vanish from the cluster last. A
 * signal may come at any point of the wiring, so each step stops only what exists by then.
 */
function shutdownSteps(shutdown: Shutdown, b: Basics, running: Partial<Running>, metricsServer: { close(): Promise<void> } | undefined): void {
  shutdown
    .step('stats poller', () => running.poller?.stop())
    .step('master watch', () => running.masterWatch?.stop())
    .step('raft leader placement', () => running.raftPlacement?.stop())
    .step('listener history', () => running.history?.stop())
    .step('drain watch', () => running.drainWatch?.stop())
    .step('forgotten marker', () => running.forgottenMarker?.stop())
    .step('transcoders', () => running.transcoders?.stop())
    // A master resigns first: its controller, still running, rewrites icecast.xml as a relay
    // (the file no longer takes the sources, and this node's listeners hear the next master
    // through the relay), and the sources still attached here move through the front doors.
    .step('master candidacy', async () => {
      const { candidacy, control } = running;
      if (candidacy && control) await resignMaster(candidacy, control, 'shutdown');
    })
    // Then no more rewrites (the one the resignation started completes): the config stays as
    // it is for whoever restarts radiod.
    .step('icecast config', () => running.control?.controller.stop())
    .step('peer master lookup', () => running.peerMaster?.stop())
    // Every candidacy is gone by now; revoking the shared election lease removes any key left.
    .step('elections', () => running.elector?.stop())
    // Refuses every source from the moment the candidacy stopped; closing it refuses them too.
    .step('source authenticator', () => running.sourceAuth?.stop())
    .step('cluster view', () => running.view?.stop())
    .step('metrics server', () => metricsServer?.close())
    // The node vanishes once it no longer serves.
    .step('presence', () => running.presence?.stop())
    .step('statsd', () => b.metrics.close())
    .step('etcd client', () => b.client.close());
}

/** `argv` is shaped like process.argv (node, script, arguments). */
export async function main(argv: string[]): Promise<void> {
  const opts = parseOrExit(argv);
  const { log, throttled, metrics, metricsServer, registry } = await observability(opts);
  const b: Basics = { opts, log, throttled, metrics, registry, client: connectEtcd(opts), addresses: await resolveAddresses(opts.ip) };
  const running: Partial<Running> = {};
  const shutdown = new Shutdown(log, FORCE_EXIT_AFTER_MS);
  shutdownSteps(shutdown, b, running, metricsServer);
  shutdown.onSignals();

  const secrets = await waitForSecrets(b, shutdown);
  if (!secrets) return;
  const view = (running.view = new ClusterView(b.client, log.child({ component: 'cluster-view' })));
  await view.start();
  // A signal during an await of the start-up has run the stop steps already (or is running
  // them): anything started after it would be left running, its lease unrevoked.
  if (shutdown.stopping) return;
  const sourceAuth = (running.sourceAuth = new SourceAuthServer({
    mounts: () => view.current().mounts,
    mayTakeSources: () => running.candidacy?.isMaster ?? false,
    log: log.child({ component: 'source-auth' }),
    metrics,
  }));
  const sourceAuthUrl = await sourceAuth.start();
  if (shutdown.stopping) return;
  const control = (running.control = icecastControl(b, view, peerInformed(b, view, running), secrets, sourceAuthUrl));
  await control.controller.start();
  if (shutdown.stopping) return;
  const elector = (running.elector = new Elector(b.client, { ttlSeconds: opts.leaseTtl, log: log.child({ component: 'election' }) }));
  elector.start();
  const candidacy = (running.candidacy = masterCandidacy(b, elector, control.controller));
  const deposition = new Deposition(b.client, { nodeName: opts.name, lease: elector.lease, log: log.child({ component: 'deposition' }) });
  revokePredecessorOnGrant(b, elector, deposition);
  running.masterWatch = new MasterWatch({
    current: () => view.current(),
    deposition,
    leadsOrLed: () => candidacy.role !== 'none',
    nodeName: opts.name,
    ownAddresses: b.addresses,
    log: log.child({ component: 'master-watch' }),
    metrics,
  });
  running.masterWatch.start();
  running.raftPlacement = new RaftLeaderPlacement(b.client, {
    isMaster: () => candidacy.isMaster,
    ownAddresses: b.addresses,
    log: log.child({ component: 'raft-placement' }),
  });
  running.raftPlacement.start();
  const presence = (running.presence = new Presence(b.client, opts.name, { ttlSeconds: opts.leaseTtl, log: log.child({ component: 'presence' }) }));
  presence.start();
  running.forgottenMarker = new ForgottenMarkerRemover({ client: b.client, view, nodeName: opts.name, throttled });
  running.forgottenMarker.start();
  running.transcoders = new TranscoderManager({
    elector,
    state: view,
    nodeName: opts.name,
    liquidsoapPath: opts.liquidsoap,
    log: log.child({ component: 'transcoders' }),
    metrics,
  });
  const gate = new CandidacyGate(candidacy, (reason) =>
    resignMaster(candidacy, control, reason).catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'cannot drop local sources after resigning')),
  );
  // Before the transcoders and the polls start, so that a node restarted while drained never campaigns.
  const transcoders = running.transcoders;
  running.drainWatch = new DrainWatch({
    view,
    nodeName: opts.name,
    log: log.child({ component: 'drain' }),
    onHandOver: (handOver) => {
      gate.setHandingOver(handOver);
      transcoders.setHandingOver(handOver);
    },
  });
  running.drainWatch.start();
  running.transcoders.start();
  const relayVia = opts.relayVia;
  // The front door holds one Icecast connection per mount for all its listeners; its own counts
  // are the truth (reached where relays reach it; with relays "direct", Icecast's count only).
  const frontDoor = relayVia === 'direct' ? undefined : (timeoutMs: number) => fetchFrontDoorListeners(relayVia, timeoutMs);
  running.poller = new StatsPoller(
    () => control.endpoint,
    opts.statusInterval,
    onStatsPoll(b, shutdown, { view, control, candidacy, gate, presence }),
    frontDoor,
  );
  running.poller.start();
  running.history = new ListenerHistoryWriter({ client: b.client, view, isMaster: () => candidacy.role === 'master', throttled });
  running.history.start();
  log.info(
    { node: opts.name, addresses: b.addresses, config: opts.icecastConfig, icecast: control.endpoint.baseUrl, reload: control.reloader.description },
    'radiod started',
  );
}

if (isEntryPoint(import.meta.url)) {
  main(process.argv).catch((err: unknown) => {
    process.stderr.write(`radiod: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
