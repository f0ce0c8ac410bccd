import { CommanderError } from 'commander';
import { createLogger, ThrottledLog } from '../common/logger.js';
import { createMetrics } from '../common/metrics.js';
import { PrometheusRegistry } from '../common/prometheus.js';
import { startMetricsServer } from '../common/metrics-server.js';
import { errorMessage } from '../common/errors.js';
import { connectEtcd } from '../coordination/client.js';
import { ClusterView } from '../coordination/cluster-view.js';
import { ensureIcecastSecrets, type IcecastSecrets } from '../coordination/icecast-secrets.js';
import { Presence } from '../coordination/presence.js';
import type { MasterInfo } from '../coordination/cluster-state.js';
import { parseRadiodOptions, radiodCommand, resolveAddresses } from './options.js';
import { TranscoderManager } from './transcoder/manager.js';
import { MasterCandidacy } from './candidacy.js';
import { IcecastController } from './icecast/controller.js';
import { CommandReloader, SignalReloader } from './icecast/reloader.js';
import { BandwidthMeter } from './icecast/bandwidth.js';
import type { IcecastNodeSettings } from './icecast/render.js';
import {
  StatsPoller,
  fetchIcecastStats,
  icecastAnswers,
  killSource,
  localIcecastUrl,
  type IcecastEndpoint,
  type PollResult,
} from './icecast/stats-poller.js';
import { buildNodeStatus, relaysFromOtherNodes } from './node-report.js';

/** Consecutive failed polls before the node gives up its candidacy (a restart takes ~1 s). */
const DOWN_AFTER_FAILURES = 3;

async function main(): Promise<void> {
  let opts;
  try {
    opts = parseRadiodOptions(process.argv, radiodCommand().exitOverride());
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode);
    process.stderr.write(`radiod: ${errorMessage(err)}\n`);
    process.exit(2);
  }

  const log = createLogger('radiod', opts.logLevel, opts.logFormat);
  const throttled = new ThrottledLog(log);
  const registry = new PrometheusRegistry();
  const metrics = createMetrics(
    opts.statsd,
    'radiod',
    opts.name,
    (err) => throttled.warn('statsd', { err: err.message }, 'statsd send failed'),
    registry,
  );
  // Metrics are a convenience: a taken port must not keep radiod from running Icecast.
  const metricsServer = await startMetricsServer(opts.metricsListen, registry, log.child({ component: 'metrics' })).catch(
    (err: unknown) => {
      log.error({ err: errorMessage(err) }, 'Prometheus metrics disabled');
      return undefined;
    },
  );
  const addresses = await resolveAddresses(opts.ip);
  const client = connectEtcd(opts);

  let shuttingDown = false;
  const cleanups: (() => Promise<void> | void)[] = [];
  const shutdown = async (signal: string): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      log.warn('shutdown took too long; exiting');
      process.exit(1);
    }, 8000);
    for (const step of cleanups.reverse()) {
      try {
        await step();
      } catch (err) {
        log.warn({ err: errorMessage(err) }, 'shutdown step failed');
      }
    }
    await metrics.close().catch(() => {});
    client.close();
    clearTimeout(force);
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  // Passwords first: no useful config can be written without them.
  let secrets: IcecastSecrets | undefined;
  while (!secrets) {
    try {
      secrets = await ensureIcecastSecrets(client);
    } catch (err) {
      if (shuttingDown) return;
      throttled.warn('secrets', { err: errorMessage(err) }, 'cannot read the Icecast secrets from etcd; retrying');
      metrics.increment('errors.etcd');
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  if (shuttingDown) return;
  const adminPassword = secrets.adminPassword;

  const view = new ClusterView(client, log.child({ component: 'cluster-view' }));
  cleanups.push(() => view.stop());
  cleanups.unshift(async () => {
    await metricsServer?.close();
  });
  await view.start();

  const node: IcecastNodeSettings = {
    name: opts.name,
    addresses,
    icecastPort: opts.icecastPort,
    ...(opts.icecastBind ? { bindAddress: opts.icecastBind } : {}),
    hostname: opts.domain,
    maxListeners: opts.maxListeners,
    paths: {
      basedir: opts.icecastBasedir,
      logdir: opts.icecastLogdir,
      webroot: opts.icecastWebroot,
      adminroot: opts.icecastAdminroot,
      ...(opts.icecastPidfile ? { pidfile: opts.icecastPidfile } : {}),
    },
  };
  const baseUrl = localIcecastUrl(opts.icecastPort, opts.icecastBind);
  const endpoint: IcecastEndpoint = { baseUrl, adminUser: 'admin', adminPassword };
  const answers = () => icecastAnswers(baseUrl);
  const reloader = opts.icecastReload
    ? new CommandReloader(opts.icecastReload, answers, log)
    : new SignalReloader({ answers, ...(opts.icecastPidfile ? { pidfile: opts.icecastPidfile } : {}) });

  /**
   * Drops the sources attached to this Icecast after it stopped being master: they would
   * otherwise stay here, invisible to the rest of the cluster, and block the relays. Their
   * clients reconnect through the front door's proxy, which sends them to the new master.
   */
  const dropLocalSources = async (): Promise<void> => {
    const stats = await fetchIcecastStats(endpoint);
    const mounts = view.current().mounts;
    for (const m of stats.mounts) {
      const mount = mounts.get(m.mount);
      if (mount && mount.relayUrl === undefined) {
        log.info({ mount: m.mount }, 'dropping a local source: this node is no longer master');
        await killSource(endpoint, m.mount).catch((err: unknown) =>
          log.warn({ mount: m.mount, err: errorMessage(err) }, 'cannot drop source'),
        );
      }
    }
  };

  const controller = new IcecastController({
    source: view,
    node,
    secrets,
    configPath: opts.icecastConfig,
    reloader,
    onDemoted: () => dropLocalSources(),
    afterMasterReload: async () => {
      // Icecast keeps a connected source even after its <mount> is gone: drop deleted mounts' sources.
      const stats = await fetchIcecastStats(endpoint);
      const mounts = view.current().mounts;
      for (const m of stats.mounts) {
        if (!mounts.has(m.mount)) {
          log.info({ mount: m.mount }, 'dropping the source of a deleted mount');
          await killSource(endpoint, m.mount).catch((err: unknown) =>
            log.warn({ mount: m.mount, err: errorMessage(err) }, 'cannot drop source'),
          );
        }
      }
    },
    log: log.child({ component: 'icecast' }),
    metrics,
  });
  cleanups.push(() => controller.stop());
  await controller.start();

  const masterInfo: MasterInfo = { name: opts.name, addresses, icecastPort: opts.icecastPort };
  const candidacy = new MasterCandidacy(client, masterInfo, {
    ttlSeconds: opts.leaseTtl,
    log: log.child({ component: 'election' }),
    onChange: (role) => {
      log.info({ role }, role === 'master' ? 'this node is master' : role === 'fenced' ? 'master role fenced: etcd does not confirm it' : 'this node is not master');
      metrics.gauge('is_master', role === 'master' ? 1 : 0);
      controller.setRole(role);
    },
  });
  cleanups.push(async () => {
    const wasMaster = candidacy.isMaster;
    // No more rewrites: the config stays as it is for whoever restarts radiod.
    await controller.stop();
    await candidacy.stop('shutdown');
    if (wasMaster) await dropLocalSources().catch(() => {});
  });

  const presence = new Presence(client, opts.name, { ttlSeconds: opts.leaseTtl, log: log.child({ component: 'presence' }) });
  // Stopped last of all (cleanups run in reverse): the node vanishes once it no longer serves.
  cleanups.unshift(() => presence.stop());
  presence.start();

  // Pushed after the candidacy's cleanup, so on shutdown transcoders stop before it resigns.
  const transcoders = new TranscoderManager({
    client,
    state: view,
    nodeName: opts.name,
    liquidsoapPath: opts.liquidsoap,
    ttlSeconds: opts.leaseTtl,
    log: log.child({ component: 'transcoders' }),
    metrics,
  });
  cleanups.push(() => transcoders.stop());
  transcoders.start();

  const bandwidth = new BandwidthMeter();
  let up = false;
  let failures = 0;
  const onPoll = (r: PollResult): void => {
    if (shuttingDown) return;
    if (r.stats) {
      failures = 0;
      throttled.clear('icecast-down');
      if (!up) {
        up = true;
        bandwidth.reset();
        log.info({ url: baseUrl }, 'local icecast is up');
        controller.icecastStarted();
        candidacy.start();
      }
    } else {
      failures++;
      throttled.warn('icecast-down', { err: r.error, url: baseUrl }, 'local icecast does not answer');
      metrics.increment('errors.icecast_poll');
      if (up && failures >= DOWN_AFTER_FAILURES) {
        up = false;
        log.warn({ failures }, 'local icecast is down');
        void candidacy.stop('local icecast is down');
      }
    }
    const kbps = r.stats ? bandwidth.sample(r.at, r.stats.mounts) : 0;
    const status = buildNodeStatus(
      { name: opts.name, addresses, icecastPort: opts.icecastPort, maxListeners: opts.maxListeners, bandwidthMbps: opts.bandwidth },
      r.stats,
      kbps,
      r.at,
      candidacy.role === 'none' ? {} : relaysFromOtherNodes(view.current(), opts.name),
    );
    presence.publish(status);
    metrics.gauge('icecast.up', r.stats ? 1 : 0);
    metrics.gauge('listeners', status.listeners);
    metrics.gauge('bandwidth_kbps', status.bandwidthKbps);
  };
  const poller = new StatsPoller(() => endpoint, opts.statusInterval, onPoll);
  cleanups.push(() => poller.stop());
  poller.start();
  log.info(
    { node: opts.name, addresses, config: opts.icecastConfig, icecast: baseUrl, reload: reloader.description },
    'radiod started',
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`radiod: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
