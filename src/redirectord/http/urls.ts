import { isIP } from 'node:net';
import type { NodeStatus } from '../../coordination/node-status.js';

/** Path prefix under which every node proxies its local Icecast to listeners. */
export const STREAM_PREFIX = '/_stream';

/** The IP family a listener connected with; IPv4-mapped IPv6 addresses count as IPv4. */
export function clientFamily(remoteAddress: string | undefined): 4 | 6 {
  if (!remoteAddress) return 4;
  if (/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(remoteAddress)) return 4;
  return isIP(remoteAddress) === 6 ? 6 : 4;
}

/** `host` as it goes in a URL authority: IPv6 literals bracketed. */
export function urlHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

function authority(host: string, port: number, defaultPort = 80): string {
  return port === defaultPort ? urlHost(host) : `${urlHost(host)}:${port}`;
}

/**
 * The host a listener is sent to: an address of its own family when the node has one, else
 * any address, else the node's name in the zone (redirectord answers `<node>.DOMAIN`).
 */
export function nodeHost(node: NodeStatus, family: 4 | 6, domain: string): string {
  const same = node.addresses.find((a) => isIP(a) === family);
  if (same) return same;
  const any = node.addresses.find((a) => isIP(a) !== 0);
  return any ?? `${node.name}.${domain}`;
}

/**
 * Percent-encodes whatever is not printable ASCII in a query string taken from the request
 * line, byte for byte (Node hands the request line over as latin1), so it is safe in a
 * Location header and survives unchanged.
 */
export function safeQuery(query: string): string {
  return query.replace(/[^\x21-\x7e]|[<>"`{}|\\^]/g, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `%${code.toString(16).toUpperCase().padStart(2, '0')}` : encodeURIComponent(c);
  });
}

/**
 * How the listener reached the front door. Over HTTPS every URL it is given is https:// on the
 * HTTPS port and names hosts, never addresses: a certificate names hosts.
 */
export type Scheme = { kind: 'http' } | { kind: 'https'; port: number };

/** A request that came over TLS is answered with https:// URLs on the HTTPS port. */
export function requestScheme(httpsPort: number | undefined, secure: boolean): Scheme {
  return secure ? { kind: 'https', port: httpsPort ?? 443 } : { kind: 'http' };
}

export const PLAIN_HTTP: Scheme = { kind: 'http' };

export interface RedirectTargetInput {
  node: NodeStatus;
  family: 4 | 6;
  domain: string;
  mountPath: string;
  /** Query string without the `?`, or '' */
  query: string;
  /** redirectord's HTTP port on every node. */
  httpPort: number;
  /** true: the node's own /_stream proxy; false: the node's Icecast port directly. */
  enableIcecastProxy: boolean;
  /** Default plain HTTP. */
  scheme?: Scheme;
}

/** Where a listener of `mountPath` is redirected on the chosen node. */
export function redirectTarget(i: RedirectTargetInput): string {
  const q = i.query ? `?${safeQuery(i.query)}` : '';
  const scheme = i.scheme ?? PLAIN_HTTP;
  // Icecast's own port speaks plain HTTP only: without the proxy an HTTPS listener still goes there.
  if (scheme.kind === 'https' && i.enableIcecastProxy) {
    return `https://${authority(`${i.node.name}.${i.domain}`, scheme.port, 443)}${STREAM_PREFIX}${i.mountPath}${q}`;
  }
  const host = nodeHost(i.node, i.family, i.domain);
  if (i.enableIcecastProxy) return `http://${authority(host, i.httpPort)}${STREAM_PREFIX}${i.mountPath}${q}`;
  return `http://${authority(host, i.node.icecastPort)}${i.mountPath}${q}`;
}

/** The stream's public URL, through the balancer of whichever node DNS picks. */
export function publicStreamUrl(domain: string, httpPort: number, mountPath: string, scheme: Scheme = PLAIN_HTTP): string {
  if (scheme.kind === 'https') return `https://${authority(domain, scheme.port, 443)}${mountPath}`;
  return `http://${authority(domain, httpPort)}${mountPath}`;
}
