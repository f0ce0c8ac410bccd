import { isIP } from 'node:net';
import { Command, Option } from 'commander';
import { addDaemonOptions, booleanFlag, intFlag, splitList, icecastPortOption, type DaemonFlags } from '../common/flags.js';
import { DEFAULT_LB_POLICY } from './balancer/policy.js';
import { nodeIdentityProblems } from '../coordination/node-status.js';

export interface RedirectordOptions extends DaemonFlags {
  httpPort: number;
  httpBind?: string;
  /** 0: no HTTPS. */
  httpsPort: number;
  tlsCert?: string;
  tlsKey?: string;
  /** ACME for the whole cluster: the CA's directory URL, a contact, trust for the CA's own HTTPS. */
  acmeDirectory?: string;
  acmeEmail?: string;
  acmeCaFile?: string;
  dnsPort: number;
  dnsBind?: string;
  nameservers: string[];
  lbPolicy: string;
  enableIcecastProxy: boolean;
  dnsTtl: number;
  icecastPort: number;
  icecastHost: string;
  accessLog?: string;
}

/** What an operator does with it: help2man turns this into the man page's closing section (debian/rules). */
const REDIRECTORD_OPERATING = `
Operating it:
  http://NODE/                 status page: nodes, master, what is on air per mount, and
                               listeners over the last 24 hours; /status.json the same data.
  /admin/listclients?mount=M   who listens now on this node, each with their own address and
                               user agent, in Icecast's XML (.json: with referer and bytes);
                               user admin, the cluster's Icecast admin password. radioctl
                               listeners asks every node. Other Icecast admin URLs: 403.
  --access-log FILE            one line per finished listener session (Icecast's format);
                               the package logs to /var/log/autoradio/access.log, rotated
                               weekly by logrotate, which sends SIGHUP to reopen it.
  Logs go to stdout; under systemd each line carries its syslog priority, so
  journalctl -p err -u redirectord shows errors. --log-format text is for people.
  Metrics: http://127.0.0.1:10291/metrics (Prometheus); docs/monitoring has alert rules.
  Restarts refuse no connection when port 80 comes from redirectord.socket (the package's
  generator writes it once DOMAIN is set in /etc/default/autoradio).`;

export function redirectordCommand(): Command {
  const cmd = new Command('redirectord').description(
    "The node's front door: authoritative DNS for the cluster domain and HTTP on port 80 (redirects, playlists, listener and source proxies, status page).",
  );
  addDaemonOptions(cmd);
  cmd.addHelpText('after', REDIRECTORD_OPERATING);
  return cmd
    .addOption(
      new Option('--http-port <port>', 'HTTP port').env('AUTORADIO_HTTP_PORT').default(80).argParser(intFlag('--http-port', 1, 65535)),
    )
    .addOption(new Option('--http-bind <address>', 'address for HTTP (default: all)').env('AUTORADIO_HTTP_BIND'))
    .addOption(
      new Option('--https-port <port>', 'HTTPS port, on the --http-bind address (0: off; off too while no certificate is available)')
        .env('AUTORADIO_HTTPS_PORT')
        .default(443)
        .argParser(intFlag('--https-port', 0, 65535)),
    )
    .addOption(new Option('--tls-cert <file>', 'PEM certificate chain for HTTPS (read again when it changes)').env('AUTORADIO_TLS_CERT'))
    .addOption(new Option('--tls-key <file>', 'PEM private key of --tls-cert').env('AUTORADIO_TLS_KEY'))
    .addOption(
      new Option('--acme-directory <url>', "ACME directory URL: one certificate for DOMAIN and *.DOMAIN by DNS-01 for the whole cluster, kept in etcd (--tls-cert files take precedence)").env('AUTORADIO_ACME_DIRECTORY'),
    )
    .addOption(new Option('--acme-email <address>', 'contact address for the ACME account (expiry notices)').env('AUTORADIO_ACME_EMAIL'))
    .addOption(new Option('--acme-ca-file <file>', "PEM CA certificates to trust for the ACME server's own HTTPS (besides the system's)").env('AUTORADIO_ACME_CA_FILE'))
    .addOption(
      new Option('--dns-port <port>', 'DNS port (UDP and TCP)').env('AUTORADIO_DNS_PORT').default(53).argParser(intFlag('--dns-port', 1, 65535)),
    )
    .addOption(new Option('--dns-bind <address>', 'address for DNS (default: all IPv4)').env('AUTORADIO_DNS_BIND'))
    .addOption(
      new Option('--nameservers <names>', 'comma list of the stable nodes named in the NS delegation (default: this node)')
        .env('AUTORADIO_NAMESERVERS')
        .argParser((v: string) => splitList(v)),
    )
    .addOption(
      new Option('--lb-policy <policy>', 'load balancing: filters and scorers, then weighted|best|random')
        .env('AUTORADIO_LB_POLICY')
        .default(DEFAULT_LB_POLICY),
    )
    .addOption(
      new Option('--enable-icecast-proxy <bool>', 'serve listeners through /_stream on port 80 (false: redirect to Icecast\'s port)')
        .env('AUTORADIO_ENABLE_ICECAST_PROXY')
        .default(true)
        .argParser(booleanFlag('--enable-icecast-proxy')),
    )
    .addOption(
      new Option('--dns-ttl <seconds>', 'TTL of node addresses in DNS answers')
        .env('AUTORADIO_DNS_TTL')
        .default(5)
        .argParser(intFlag('--dns-ttl', 1, 86400)),
    )
    .addOption(icecastPortOption())
    .addOption(
      new Option('--icecast-host <address>', 'address of the local Icecast').env('AUTORADIO_ICECAST_HOST').default('127.0.0.1'),
    )
    .addOption(
      new Option('--access-log <file>', "append one line per finished /_stream listener session, in Icecast's access.log format; reopened on SIGHUP (default: off)").env(
        'AUTORADIO_ACCESS_LOG',
      ),
    );
}

export function parseRedirectordOptions(argv: string[], cmd = redirectordCommand()): RedirectordOptions {
  cmd.parse(argv);
  const opts = cmd.opts<RedirectordOptions>();
  const problems = nodeIdentityProblems(opts.name, opts.ip);
  if (problems.length > 0) throw new Error(problems.join('; '));
  for (const [flag, value] of [
    ['--http-bind', opts.httpBind],
    ['--dns-bind', opts.dnsBind],
  ] as const) {
    if (value !== undefined && isIP(value) === 0) throw new Error(`${flag} must be an IP address, got "${value}"`);
  }
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) throw new Error('--tls-cert and --tls-key go together');
  if (opts.acmeDirectory !== undefined && !/^https?:\/\/[^\s/]+/.test(opts.acmeDirectory)) {
    throw new Error(`--acme-directory must be an http(s) URL, got "${opts.acmeDirectory}"`);
  }
  if (opts.acmeDirectory === undefined && (opts.acmeEmail !== undefined || opts.acmeCaFile !== undefined)) {
    throw new Error('--acme-email and --acme-ca-file need --acme-directory');
  }
  opts.domain = opts.domain.toLowerCase().replace(/\.$/, '');
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/.test(opts.domain)) {
    throw new Error(`--domain must be a DNS name such as radio.example.org, got "${opts.domain}"`);
  }
  if (!opts.nameservers || opts.nameservers.length === 0) opts.nameservers = [opts.name];
  return opts;
}
