import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { Command, Option } from 'commander';
import { addDaemonOptions, intFlag, numberFlag, icecastPortOption, type DaemonFlags } from '../common/flags.js';
import { nodeIdentityProblems } from '../coordination/node-status.js';
import { MAX_LEASE_TTL_SECONDS, MIN_LEASE_TTL_SECONDS } from '../coordination/fencing-budget.js';
import type { HostPort } from '../coordination/host-port.js';
import { DEBIAN_ICECAST_PATHS } from './icecast/render.js';

export interface RadiodOptions extends DaemonFlags {
  icecastConfig: string;
  icecastPort: number;
  icecastReload?: string;
  icecastPidfile?: string;
  icecastBind?: string;
  icecastBasedir: string;
  icecastLogdir: string;
  icecastWebroot: string;
  icecastAdminroot: string;
  /** Mbit/s; 0 means unlimited. */
  bandwidth: number;
  /** 0 means unlimited. */
  maxListeners: number;
  leaseTtl: number;
  liquidsoap: string;
  /** Milliseconds between two status polls of the local Icecast. */
  statusInterval: number;
  /** Seconds a running Icecast may answer nothing before radiod kills it (0: never). */
  icecastKillStalledAfter: number;
  /** The local front door that Icecast's relays pull through, or straight from the master. */
  relayVia: HostPort | 'direct';
  /** Where the election lease is noted for the next radiod on this node. */
  leaseFile: string;
}

/** `--relay-via`: "direct", or the front door as host:port (IPv6 in brackets). */
export function relayViaFlag(value: string): HostPort | 'direct' {
  if (value === 'direct') return value;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(value);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (host === undefined || isIP(host) === 0 || !(port >= 1 && port <= 65535)) {
    throw new Error(`--relay-via must be "direct" or the front door's address as IP:PORT ([IPv6]:PORT), got "${value}"`);
  }
  return { host, port };
}

/** What an operator does with it: help2man turns this into the man page's closing section (debian/rules). */
const RADIOD_OPERATING = `
Operating it:
  radiod owns --icecast-config: it rewrites it from etcd and reloads Icecast; edits there
  are lost. A stopped radiod (systemctl stop radiod) resigns the master role first, so the
  next node takes the sources at once. radioctl drain NODE makes the node's radiod hand its
  master role and transcoders to other nodes (radioctl undrain NODE: back).
  Logs go to stdout; under systemd each line carries its syslog priority, so
  journalctl -p err -u radiod shows errors (a transcoder that cannot run, an Icecast
  configuration that cannot be written); -p warning adds a local Icecast that stopped
  answering. --log-format text is for people.
  Metrics: http://127.0.0.1:10292/metrics (Prometheus); the master's radiod also exports
  what is on air per mount. radioctl status shows the whole cluster.`;

export function radiodCommand(): Command {
  const cmd = new Command('radiod').description(
    'Keeps the local Icecast in line with the autoradio cluster and publishes its status.',
  );
  addDaemonOptions(cmd);
  cmd.addHelpText('after', RADIOD_OPERATING);
  return cmd
    .addOption(
      new Option('--icecast-config <file>', 'icecast.xml that radiod owns and rewrites')
        .env('AUTORADIO_ICECAST_CONFIG')
        .default('/etc/icecast2/icecast.xml'),
    )
    .addOption(icecastPortOption())
    .addOption(
      new Option('--icecast-reload <command>', 'shell command that reloads Icecast (default: SIGHUP to its pid)').env(
        'AUTORADIO_ICECAST_RELOAD',
      ),
    )
    .addOption(
      new Option('--icecast-pidfile <file>', 'pidfile Icecast writes (default: none; the pid is found with pidof icecast2)').env(
        'AUTORADIO_ICECAST_PIDFILE',
      ),
    )
    .addOption(
      new Option('--icecast-bind <address>', 'address Icecast listens on (default: all)').env('AUTORADIO_ICECAST_BIND'),
    )
    .addOption(
      new Option('--icecast-basedir <dir>', 'Icecast base directory')
        .env('AUTORADIO_ICECAST_BASEDIR')
        .default(DEBIAN_ICECAST_PATHS.basedir),
    )
    .addOption(
      new Option('--icecast-logdir <dir>', 'Icecast log directory (writable by the icecast2 user)')
        .env('AUTORADIO_ICECAST_LOGDIR')
        .default(DEBIAN_ICECAST_PATHS.logdir),
    )
    .addOption(
      new Option('--icecast-webroot <dir>', 'Icecast web root')
        .env('AUTORADIO_ICECAST_WEBROOT')
        .default(DEBIAN_ICECAST_PATHS.webroot),
    )
    .addOption(
      new Option('--icecast-adminroot <dir>', 'Icecast admin pages')
        .env('AUTORADIO_ICECAST_ADMINROOT')
        .default(DEBIAN_ICECAST_PATHS.adminroot),
    )
    .addOption(
      new Option('--bandwidth <mbps>', 'outbound bandwidth of this node in Mbit/s (0: unlimited)')
        .env('AUTORADIO_BANDWIDTH')
        .default(0)
        .argParser(numberFlag('--bandwidth', 0, 1_000_000)),
    )
    .addOption(
      new Option('--max-listeners <n>', 'listeners this node accepts (0: unlimited)')
        .env('AUTORADIO_MAX_LISTENERS')
        .default(0)
        .argParser(intFlag('--max-listeners', 0, 10_000_000)),
    )
    .addOption(
      new Option(
        '--lease-ttl <seconds>',
        `etcd lease TTL for presence and elections (at least ${MIN_LEASE_TTL_SECONDS}: a cut-off master must be fenced before it expires)`,
      )
        .env('AUTORADIO_LEASE_TTL')
        .default(5)
        .argParser(intFlag('--lease-ttl', MIN_LEASE_TTL_SECONDS, MAX_LEASE_TTL_SECONDS)),
    )
    .addOption(
      new Option(
        '--relay-via <ip:port|direct>',
        "where Icecast's relays pull the master's streams: the local front door (which follows a new master without a relay restart), or \"direct\" from the master's Icecast",
      )
        .env('AUTORADIO_RELAY_VIA')
        .default(relayViaFlag('127.0.0.1:80'), '127.0.0.1:80')
        .argParser(relayViaFlag),
    )
    .addOption(
      new Option('--lease-file <path>', 'where radiod notes its election lease, so that a restarted radiod revokes it at once')
        .env('AUTORADIO_LEASE_FILE')
        .default('/run/autoradio-radiod/election-lease'),
    )
    .addOption(
      new Option('--liquidsoap <path>', 'liquidsoap binary for transcoding mounts')
        .env('AUTORADIO_LIQUIDSOAP')
        .default('liquidsoap'),
    )
    .addOption(statusIntervalOption())
    .addOption(killStalledOption());
}

function statusIntervalOption(): Option {
  return new Option('--status-interval <ms>', 'milliseconds between status polls of the local Icecast')
    .env('AUTORADIO_STATUS_INTERVAL')
    .default(1000)
    .argParser(intFlag('--status-interval', 200, 60_000));
}

function killStalledOption(): Option {
  return new Option(
    '--icecast-kill-stalled-after <seconds>',
    'SIGKILL a local Icecast whose process runs but that answers nothing for this long, for its supervisor to restart (0: never)',
  )
    .env('AUTORADIO_ICECAST_KILL_STALLED_AFTER')
    .default(0)
    .argParser(intFlag('--icecast-kill-stalled-after', 0, 3600));
}

/** Parses argv (node, script, ...flags) and checks what commander cannot. */
export function parseRadiodOptions(argv: string[], cmd = radiodCommand()): RadiodOptions {
  cmd.parse(argv);
  const opts = cmd.opts<RadiodOptions>();
  const problems = nodeIdentityProblems(opts.name, opts.ip);
  if (problems.length > 0) throw new Error(problems.join('; '));
  if (opts.icecastBind !== undefined && isIP(opts.icecastBind) === 0) {
    throw new Error(`--icecast-bind must be an IP address, got "${opts.icecastBind}"`);
  }
  return opts;
}

/** The node's public addresses: --ip, else what the host's own name resolves to. */
export async function resolveAddresses(ips: string[] | undefined): Promise<string[]> {
  if (ips && ips.length > 0) return [...new Set(ips)];
  const found = await lookup(hostname(), { all: true });
  const addresses = [...new Set(found.map((a) => a.address))];
  // Debian maps the host name to 127.0.1.1: only fall back to loopback when nothing else exists.
  const routable = addresses.filter((a) => !a.startsWith('127.') && a !== '::1');
  const result = routable.length > 0 ? routable : addresses;
  if (result.length === 0) throw new Error(`cannot resolve "${hostname()}"; pass --ip`);
  return result;
}
