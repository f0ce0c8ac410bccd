import { withCorsHeaders } from '../http/stream-response.js';

/**
 * The response head a fan-out listener gets: the upstream Icecast's own head (its status line,
 * content type and `icy-*` headers, byte for byte) with CORS added, and `icy-metaint` only for a
 * listener that asked for metadata (the feed always asks, to know the current title). Pure.
 */
export function listenerHead(upstreamRawHead: Buffer, wantsMetadata: boolean): Buffer {
  if (wantsMetadata) return withCorsHeaders(upstreamRawHead);
  const text = upstreamRawHead.toString('latin1');
  const kept = text
    .split(/(?<=\n)/)
    .filter((line) => !/^icy-metaint\s*:/i.test(line))
    .join('');
  return withCorsHeaders(Buffer.from(kept, 'latin1'));
}

/** Whether a listener's request asks for ICY metadata (`Icy-MetaData: 1`, as Icecast reads it). */
export function asksForMetadata(value: string | undefined): boolean {
  return value !== undefined && Number.parseInt(value.trim(), 10) > 0;
}

/** The request a feed sends its Icecast: one plain GET of the mount, metadata included. */
export function feedRequest(mount: string, host: string, port: number): Buffer {
  return Buffer.from(
    `GET ${mount} HTTP/1.0\r\nHost: ${host.includes(':') ? `[${host}]` : host}:${port}\r\n` +
      'User-Agent: autoradio-redirectord fan-out\r\nIcy-MetaData: 1\r\nAccept: */*\r\n\r\n',
    'latin1',
  );
}
