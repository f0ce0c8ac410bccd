import { STREAM_CORS } from './cors.js';
import { findHeadEnd } from './request-head.js';

/**
 * Pure helpers for the bytes the front door itself writes on raw sockets: Icecast's response
 * head with CORS added, the CORS preflight, and short error answers.
 */

export interface ResponseHead {
  status: number;
  version: string;
  /** Lowercased name -> value (last one wins). */
  headers: ReadonlyMap<string, string>;
  /** Byte offset of the first body byte. */
  headEnd: number;
}

export type ResponseParse =
  | { kind: 'incomplete' }
  | { kind: 'invalid'; reason: string }
  | { kind: 'complete'; head: ResponseHead };

export function parseResponseHead(buf: Uint8Array): ResponseParse {
  const headEnd = findHeadEnd(buf);
  if (headEnd < 0) return { kind: 'incomplete' };
  const text = Buffer.from(buf.buffer, buf.byteOffset, headEnd).toString('latin1');
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  while (lines.length > 0 && lines[0] === '') lines.shift();
  const m = /^([A-Z]+\/\d+\.\d+) (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!m) return { kind: 'invalid', reason: 'malformed status line' };
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) return { kind: 'invalid', reason: 'malformed header line' };
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { kind: 'complete', head: { status: Number(m[2]), version: m[1]!, headers, headEnd } };
}

/**
 * Icecast's response head with CORS headers added before the blank line. Every other byte,
 * including Icecast's own line endings and header spelling, is kept.
 */
export function withCorsHeaders(rawHead: Buffer): Buffer {
  const text = rawHead.toString('latin1');
  const kept = text
    .split(/(?<=\n)/)
    .filter((line) => !/^access-control-/i.test(line))
    .join('');
  // Drop the blank line; it is re-added after our headers.
  const body = kept.replace(/\r?\n\r?\n$/, '\r\n');
  const cors =
    `Access-Control-Allow-Origin: ${STREAM_CORS.allowOrigin}\r\n` +
    `Access-Control-Expose-Headers: ${STREAM_CORS.exposeHeaders}\r\n`;
  return Buffer.from(`${body}${cors}\r\n`, 'latin1');
}

/** The answer to `OPTIONS /_stream/...`. */
export function preflightResponse(keepAlive: boolean, requestedHeaders?: string): Buffer {
  const allowHeaders = requestedHeaders && /^[A-Za-z0-9, _-]{1,512}$/.test(requestedHeaders)
    ? requestedHeaders
    : STREAM_CORS.allowHeaders;
  return Buffer.from(
    'HTTP/1.1 204 No Content\r\n' +
      `Access-Control-Allow-Origin: ${STREAM_CORS.allowOrigin}\r\n` +
      `Access-Control-Allow-Methods: ${STREAM_CORS.allowMethods}\r\n` +
      `Access-Control-Allow-Headers: ${allowHeaders}\r\n` +
      `Access-Control-Max-Age: ${STREAM_CORS.maxAgeSeconds}\r\n` +
      'Content-Length: 0\r\n' +
      `Connection: ${keepAlive ? 'keep-alive' : 'close'}\r\n\r\n`,
    'latin1',
  );
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  431: 'Request Header Fields Too Large',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/**
 * A short plain-text answer followed by a close. HTTP/1.0 on purpose: source clients
 * (libshout, darkice) parse 1.0 answers best, and there is no keep-alive to negotiate.
 */
export function plainResponse(status: number, text: string, extraHeaders: string[] = []): Buffer {
  const body = `${text}\n`;
  return Buffer.from(
    `HTTP/1.0 ${status} ${REASONS[status] ?? 'Error'}\r\n` +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      extraHeaders.map((h) => `${h}\r\n`).join('') +
      'Connection: close\r\n\r\n' +
      body,
    'utf8',
  );
}

/** The answer to radiod's `GET /_listeners`: listeners and Icecast connections (feeds) per mount. */
export function listenerCountsResponse(listeners: ReadonlyMap<string, number>, feeds: ReadonlyMap<string, number>): Buffer {
  return documentResponse('application/json', JSON.stringify({ mounts: Object.fromEntries(listeners), feeds: Object.fromEntries(feeds) }));
}

/** A 200 answer of the front door's own (listener counts, listclients), never cached, then a close. */
export function documentResponse(contentType: string, body: string): Buffer {
  return Buffer.from(
    `HTTP/1.1 200 OK\r\nContent-Type: ${contentType}\r\nCache-Control: no-store\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    'utf8',
  );
}
