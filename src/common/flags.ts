import { hostname } from 'node:os';
import { Command, Option } from 'commander';
import { LOG_FORMATS, type LogFormat } from './log-output.js';

/**
 * Flags shared by the daemons. Every flag can also come from an environment variable so that
 * /etc/default/autoradio configures them; names avoid the ETCD_ prefix because etcd reads
 * every ETCD_* variable as one of its own flags.
 */
export interface EtcdFlags {
  etcdUrls: string[];
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
}

export interface DaemonFlags extends EtcdFlags {
  domain: string;
  name: string;
  ip: string[];
  statsd?: string;
  /** host:port of the Prometheus `/metrics` endpoint, or `off`. */
  metricsListen: string;
  logLevel: string;
  logFormat: LogFormat;
}

/**
 * Each daemon gets its own default `/metrics` port so both can run on one node. Prometheus'
 * exporter port range 9100-9999 is fully allocated (9101 is the HAProxy exporter's, 9102 the
 * statsd exporter's), so these sit above it, on ports /etc/services does not name either.
 */
export const DEFAULT_METRICS_LISTEN: Readonly<Record<string, string>> = Object.freeze({
  redirectord: '127.0.0.1:10291',
  radiod: '127.0.0.1:10292',
});

function metricsListenFlag(value: string): string {
  const v = value.trim();
  if (v.toLowerCase() === 'off') return 'off';
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^:\s]+):(\d{1,5})$/.exec(v);
  if (!m || Number(m[2]) > 65535) throw new Error(`--metrics-listen must be host:port or "off", got "${value}"`);
  return v;
}

const DEFAULT_ETCD_URLS: readonly string[] = Object.freeze(['http://localhost:2379']);

/** Repeatable list flag; the first use replaces the default instead of adding to it. */
function collect(value: string, previous: readonly string[] | undefined): string[] {
  const kept = previous === undefined || previous === DEFAULT_ETCD_URLS ? [] : previous;
  return [...kept, ...splitList(value)];
}

export function splitList(value: string): string[] {
  return value
    .split(/[\s,]+/)
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}

export function addEtcdOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--etcd-urls <urls>', 'comma-separated etcd client URLs')
        .env('AUTORADIO_ETCD_URLS')
        .default(DEFAULT_ETCD_URLS)
        .argParser(collect),
    )
    .addOption(new Option('--etcd-ca <file>', 'CA certificate for etcd (PEM)').env('AUTORADIO_ETCD_CA'))
    .addOption(new Option('--etcd-cert <file>', 'client certificate for etcd (PEM)').env('AUTORADIO_ETCD_CERT'))
    .addOption(new Option('--etcd-key <file>', 'client key for etcd (PEM)').env('AUTORADIO_ETCD_KEY'));
}

/**
 * `defaults.metricsListen` overrides the per-program default (DEFAULT_METRICS_LISTEN, looked up
 * by the command's name; `off` for any other program).
 */
export function addDaemonOptions(cmd: Command, defaults: { metricsListen?: string } = {}): Command {
  addEtcdOptions(cmd);
  const metricsDefault = defaults.metricsListen ?? DEFAULT_METRICS_LISTEN[cmd.name()] ?? 'off';
  return cmd
    .addOption(new Option('--domain <domain>', 'DNS domain of the cluster').env('DOMAIN').makeOptionMandatory())
    .addOption(
      new Option('--name <name>', 'name of this node (default: short hostname)')
        .env('AUTORADIO_NAME')
        .default(hostname().split('.')[0]),
    )
    .addOption(
      new Option('--ip <address>', 'public address of this node (repeatable; default: resolve the host name)')
        .env('AUTORADIO_IP')
        .argParser(collect),
    )
    .addOption(new Option('--statsd <host:port>', 'send metrics to this statsd').env('AUTORADIO_STATSD'))
    .addOption(
      new Option('--metrics-listen <host:port>', 'serve Prometheus metrics on http://host:port/metrics ("off" disables)')
        // Per program: both daemons read the same /etc/default/autoradio.
        .env(`AUTORADIO_${cmd.name().toUpperCase()}_METRICS_LISTEN`)
        .default(metricsDefault)
        .argParser(metricsListenFlag),
    )
    .addOption(
      new Option('--log-level <level>', 'log level')
        .env('AUTORADIO_LOG_LEVEL')
        .choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace'])
        .default('info'),
    )
    .addOption(
      new Option('--log-format <format>', 'log lines as JSON (one event per line) or text for people')
        .env('AUTORADIO_LOG_FORMAT')
        .choices(LOG_FORMATS)
        .default('json'),
    );
}

/** Parses an integer flag and refuses anything outside [min, max] with a message naming the flag. */
export function intFlag(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new Error(`${name} must be an integer between ${min} and ${max}, got "${value}"`);
    }
    return n;
  };
}

export function numberFlag(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new Error(`${name} must be a number between ${min} and ${max}, got "${value}"`);
    }
    return n;
  };
}

export function booleanFlag(name: string) {
  return (value: string): boolean => {
    const v = value.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    throw new Error(`${name} must be true or false, got "${value}"`);
  };
}

/** Both daemons talk to the node's Icecast, so they read its port from the same variable. */
export function icecastPortOption(): Option {
  return new Option('--icecast-port <port>', 'port of the local Icecast')
    .env('AUTORADIO_ICECAST_PORT')
    .default(8000)
    .argParser(intFlag('--icecast-port', 1, 65535));
}
