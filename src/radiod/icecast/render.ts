import { createHash } from 'node:crypto';
import type { ClusterState, MasterInfo } from '../../coordination/cluster-state.js';
import { masterIcecast, type HostPort } from '../../coordination/host-port.js';
import { relayPath } from '../../coordination/relay-route.js';
import type { IcecastSecrets } from '../../coordination/icecast-secrets.js';
import type { Mount } from '../../coordination/mount.js';
import { escapeXml } from '../../common/xml-escape.js';

/**
 * icecast.xml as a pure function of the cluster. The same inputs always give the same bytes,
 * so the writer can compare text to decide whether Icecast needs a reload at all.
 */

/** Where Icecast finds its files; the defaults are those of Debian's icecast2 package. */
export interface IcecastPaths {
  basedir: string;
  logdir: string;
  webroot: string;
  adminroot: string;
  /** Icecast writes its pid here; radiod reads it back to send SIGHUP. */
  pidfile?: string;
}

export const DEBIAN_ICECAST_PATHS: IcecastPaths = {
  basedir: '/usr/share/icecast2',
  logdir: '/var/log/icecast2',
  webroot: '/usr/share/icecast2/web',
  adminroot: '/usr/share/icecast2/admin',
};

export interface IcecastNodeSettings {
  name: string;
  /** This node's public addresses; used to pick a master address of the same family. */
  addresses: readonly string[];
  icecastPort: number;
  /** Listen on this address only (tests); all interfaces when unset. */
  bindAddress?: string;
  /** Host name Icecast puts in its own URLs (playlists, status pages). */
  hostname: string;
  /** Node-wide listener limit; 0 means unlimited. */
  maxListeners: number;
  paths: IcecastPaths;
  /** Icecast's own log level: 1 error, 2 warn, 3 info, 4 debug. */
  logLevel?: number;
  /**
   * The local front door: relays pull `/_relay<mount>` from it, and it follows the master, so a
   * new master needs no reload and no relay restart here. Unset: relays pull from the master's
   * Icecast directly and are rewritten at every master change.
   */
  relayVia?: HostPort;
  /**
   * radiod's source authenticator (source-auth/server.ts). Every mount that takes sources asks
   * it, on every node, so that a new master takes sources without waiting for a reload and a
   * fenced or dead radiod's Icecast takes none.
   */
  sourceAuthUrl?: string;
}

export interface RenderInput {
  /** Only `mounts` is read: the master comes separately so the caller decides what to trust. */
  state: Pick<ClusterState, 'mounts'>;
  /** True only while this node holds the (fenced) master election. */
  isMaster: boolean;
  /** The master to relay from when not master; undefined renders no relays. */
  master: MasterInfo | undefined;
  node: IcecastNodeSettings;
  secrets: IcecastSecrets;
  /** Mounts long off air whose relay waits for a listener (idle-relays.ts); none by default. */
  onDemandRelays?: ReadonlySet<string>;
}

/**
 * What a render depends on besides the node's fixed settings and secrets. `mounts` is compared
 * by identity: the cluster view hands out the same map for as long as no mount changed.
 */
export interface RenderInputs {
  mounts: ReadonlyMap<string, Mount>;
  isMaster: boolean;
  /** Fenced: rendered as master with every source password locked. */
  fenced: boolean;
  master: MasterInfo | undefined;
  onDemandRelays: ReadonlySet<string>;
}

/** Whether `next` would render the same icecast.xml as `previous` did. */
export function sameRenderInputs(previous: RenderInputs | undefined, next: RenderInputs): boolean {
  return (
    previous !== undefined &&
    previous.mounts === next.mounts &&
    previous.isMaster === next.isMaster &&
    previous.fenced === next.fenced &&
    sameMaster(previous.master, next.master) &&
    sameMembers(previous.onDemandRelays, next.onDemandRelays)
  );
}

function sameMembers(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}

function sameMaster(a: MasterInfo | undefined, b: MasterInfo | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.name === b.name && a.icecastPort === b.icecastPort && a.addresses.join() === b.addresses.join();
}

/**
 * A relay retries once about a second after losing its upstream, then waits this long
 * (Icecast's default is 120 s). Short, so a relay picks up the new master's stream within
 * seconds of a failover even if no reload reaches it.
 */
export const MASTER_UPDATE_INTERVAL_S = 2;

/** The user relays authenticate as on the master (Icecast's `relay-user`). */
export const RELAY_USER = 'relay';

const LIMIT_DEFAULTS = {
  queueSize: 524288,
  clientTimeout: 30,
  headerTimeout: 15,
  sourceTimeout: 10,
  burstSize: 65535,
};

/** Icecast counts sources, relays, admin and status requests as clients too. */
const CLIENT_HEADROOM = 100;
const UNLIMITED_CLIENTS = 10000;

/** Control characters are not allowed in XML 1.0 at all, escaped or not: escapeXml drops them. */
function text(value: string | number): string {
  return escapeXml(value);
}

function el(name: string, value: string | number): string {
  return `<${name}>${text(value)}</${name}>`;
}

/**
 * The global source password. Every mount has its own credentials, so nobody needs this one;
 * it is derived from the admin secret (the same on every render, unknown to everyone) so that
 * no mount outside the cluster's list can be fed with a guessable password.
 */
export function unusedSourcePassword(secrets: IcecastSecrets): string {
  return createHash('sha256').update(`autoradio-global-source:${secrets.adminPassword}`).digest('base64url');
}

export interface RelayTarget {
  server: string;
  port: number;
  mount: string;
  username?: string;
  password?: string;
}

/** Splits an outside relay URL into what Icecast's `<relay>` wants; undefined if unusable. */
export function parseRelayUrl(url: string): RelayTarget | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'http:' || !u.hostname) return undefined;
  // Icecast resolves the name itself; IPv6 literals go without their URL brackets.
  const server = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const target: RelayTarget = {
    server,
    port: u.port ? Number(u.port) : 80,
    mount: `${u.pathname || '/'}${u.search}`,
  };
  if (u.username) {
    target.username = safeDecode(u.username);
    target.password = safeDecode(u.password);
  }
  return target;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function sortedMounts(mounts: ReadonlyMap<string, Mount>): Mount[] {
  return [...mounts.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function indent(lines: string[], depth: number): string[] {
  const pad = '  '.repeat(depth);
  return lines.map((l) => pad + l);
}

/**
 * A `<mount>` section. On the master it carries the source credentials (relay mounts take no
 * source, so none); everywhere it carries the fallback, so listeners move to the fallback when
 * the mount's source (or relay upstream) drops and come back when it returns.
 */
function mountSection(m: Mount, withCredentials: boolean, sourceAuthUrl: string | undefined): string[] | undefined {
  const body: string[] = [];
  if (withCredentials) body.push(el('username', m.username), el('password', m.password));
  if (m.fallback !== undefined) body.push(el('fallback-mount', m.fallback), el('fallback-override', 1));
  if (sourceAuthUrl !== undefined && m.relayUrl === undefined) body.push(...sourceAuthSection(sourceAuthUrl));
  if (body.length === 0) return undefined;
  return mountBlock(m.path, body);
}

/**
 * Icecast's URL authenticator for sources only (no listener URLs: listeners pass at once). With
 * it Icecast ignores the mount's password and asks radiod, which checks the credentials itself.
 */
function sourceAuthSection(url: string): string[] {
  const option = (name: string, value: string | number) => `<option name="${name}" value="${text(value)}"/>`;
  const options = [option('stream_auth', url), option('auth_header', 'icecast-auth-user: 1'), option('timeout', 2)];
  return ['<authentication type="url">', ...indent(options, 1), '</authentication>'];
}

function relaySection(localMount: string, t: RelayTarget, onDemand = false): string[] {
  const body = [el('server', t.server), el('port', t.port), el('mount', t.mount), el('local-mount', localMount)];
  if (t.username !== undefined) body.push(el('username', t.username), el('password', t.password ?? ''));
  body.push(el('on-demand', onDemand ? 1 : 0), el('relay-shoutcast-metadata', 1));
  return ['<relay>', ...indent(body, 1), '</relay>'];
}

/**
 * Where the relays of a non-master node connect: the local front door (whatever the master),
 * or the master's Icecast, in our IP family.
 */
interface Upstream {
  server: string;
  port: number;
  /** The upstream's path for a mount. */
  pathOf: (mount: string) => string;
}

function upstreamOf(input: RenderInput): Upstream | undefined {
  if (input.isMaster) return undefined;
  const via = input.node.relayVia;
  if (via !== undefined) return { server: via.host, port: via.port, pathOf: relayPath };
  if (input.master === undefined || input.master.name === input.node.name) return undefined;
  const at = masterIcecast(input.master, input.node.addresses);
  return at === undefined ? undefined : { server: at.host, port: at.port, pathOf: (mount) => mount };
}

function section(name: string, body: string[]): string[] {
  return [`<${name}>`, ...indent(body, 1), `</${name}>`];
}

function limitsSection(node: IcecastNodeSettings, mountCount: number): string[] {
  const clients = node.maxListeners > 0 ? node.maxListeners + mountCount * 2 + CLIENT_HEADROOM : UNLIMITED_CLIENTS;
  // Each mount is one source (or relay); a few extra let a source reconnect before the old one timed out.
  const sources = Math.max(16, mountCount * 2 + 8);
  return section('limits', [
    el('clients', clients),
    el('sources', sources),
    el('queue-size', LIMIT_DEFAULTS.queueSize),
    el('client-timeout', LIMIT_DEFAULTS.clientTimeout),
    el('header-timeout', LIMIT_DEFAULTS.headerTimeout),
    el('source-timeout', LIMIT_DEFAULTS.sourceTimeout),
    el('burst-on-connect', 1),
    el('burst-size', LIMIT_DEFAULTS.burstSize),
  ]);
}

function authenticationSection(secrets: IcecastSecrets): string[] {
  return section('authentication', [
    el('source-password', unusedSourcePassword(secrets)),
    el('relay-user', RELAY_USER),
    el('relay-password', secrets.relayPassword),
    el('admin-user', 'admin'),
    el('admin-password', secrets.adminPassword),
  ]);
}

/** Everything about the server itself: the same whatever the cluster holds, but for the limits. */
function serverSections(node: IcecastNodeSettings, secrets: IcecastSecrets, mountCount: number): string[] {
  return [
    el('location', node.name),
    el('admin', `icemaster@${node.hostname}`),
    el('hostname', node.hostname),
    ...limitsSection(node, mountCount),
    ...authenticationSection(secrets),
    ...section('listen-socket', [el('port', node.icecastPort), ...(node.bindAddress ? [el('bind-address', node.bindAddress)] : [])]),
    ...section('http-headers', ['<header name="Access-Control-Allow-Origin" value="*" />']),
    el('master-update-interval', MASTER_UPDATE_INTERVAL_S),
    el('fileserve', 1),
    ...section('paths', [
      el('basedir', node.paths.basedir),
      el('logdir', node.paths.logdir),
      el('webroot', node.paths.webroot),
      el('adminroot', node.paths.adminroot),
      ...(node.paths.pidfile ? [el('pidfile', node.paths.pidfile)] : []),
      '<alias source="/" destination="/status.xsl"/>',
    ]),
    ...section('logging', [
      el('accesslog', 'access.log'),
      el('errorlog', 'error.log'),
      el('loglevel', node.logLevel ?? 3),
      el('logsize', 10000),
    ]),
    ...section('security', [el('chroot', 0)]),
  ];
}

/** On the master: each mount takes its source here, or pulls it from its outside relay URL. */
function pushMasterMount(out: string[], m: Mount, sourceAuthUrl: string | undefined): void {
  const section = mountSection(m, m.relayUrl === undefined, sourceAuthUrl);
  if (section) out.push(...section);
  const target = m.relayUrl === undefined ? undefined : parseRelayUrl(m.relayUrl);
  if (target) out.push(...relaySection(m.path, target));
}

/**
 * Elsewhere: each mount relays the master's (no relay while the master is unknown), into a
 * hidden local mount (`/_relay<path>`) that the public mount falls back to. The public mount
 * itself stays free: once this node is elected, a source is taken on it at once (asked of
 * radiod) and Icecast moves the listeners over from the relay (fallback-override), with no
 * reload in between; a relay on the public mount would hold it until a reload had removed the
 * relay, one to two seconds of Icecast's config thread.
 */
function pushRelayedMount(out: string[], m: Mount, upstream: Upstream | undefined, sourceAuthUrl: string | undefined, onDemand: boolean): void {
  if (upstream === undefined) {
    const section = mountSection(m, false, sourceAuthUrl);
    if (section) out.push(...section);
    return;
  }
  const relayMount = relayPath(m.path);
  const publicBody = [el('fallback-mount', relayMount), el('fallback-override', 1)];
  if (sourceAuthUrl !== undefined && m.relayUrl === undefined) publicBody.push(...sourceAuthSection(sourceAuthUrl));
  out.push(...mountBlock(m.path, publicBody));
  // The relay's own fallback is the mount's: listeners move there when the master has nothing.
  // Not <hidden>: Icecast's status-json would leave the relayed mount out altogether.
  if (m.fallback !== undefined) out.push(...mountBlock(relayMount, [el('fallback-mount', m.fallback), el('fallback-override', 1)]));
  out.push(
    ...relaySection(relayMount, {
      server: upstream.server,
      port: upstream.port,
      mount: upstream.pathOf(m.path),
      // No credentials: the master's mount asks radiod about sources (Icecast's URL
      // authenticator), and such a mount answers 401 to a listener presenting the relay user.
    }, onDemand),
  );
}

function mountBlock(path: string, body: string[]): string[] {
  return ['<mount type="normal">', ...indent([el('mount-name', path), ...body], 1), '</mount>'];
}

export function renderIcecastConfig(input: RenderInput): string {
  const { node, secrets, isMaster } = input;
  const mounts = sortedMounts(input.state.mounts);
  const upstream = upstreamOf(input);
  // One array for the whole file: a cluster has 1,000 mounts, and this runs on every mount change.
  const body = serverSections(node, secrets, mounts.length);
  for (const m of mounts) {
    if (isMaster) pushMasterMount(body, m, node.sourceAuthUrl);
    else pushRelayedMount(body, m, upstream, node.sourceAuthUrl, input.onDemandRelays?.has(m.path) ?? false);
  }
  return ['<!-- Written by autoradio radiod; local changes are overwritten. -->', '<icecast>', ...indent(body, 1), '</icecast>', ''].join('\n');
}
