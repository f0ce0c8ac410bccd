/**
 * Pure parser for the head of an HTTP-like request (HTTP/1.x and Icecast's SOURCE/ICE dialects)
 * as it arrives on a raw socket. Source clients are sloppy (darkice ends most header lines with a
 * bare "\n"), so both "\r\n" and "\n" end a line. Bytes are decoded as latin1 so that string
 * offsets equal byte offsets: callers rewrite a request by slicing the original buffer.
 */

export interface HeaderField {
  /** Lowercased name. */
  name: string;
  /** Value with surrounding blanks removed. */
  value: string;
  /** Byte offset of the line's first byte in the buffer. */
  start: number;
  /** Byte offset just past the line's terminator. */
  end: number;
}

export interface RequestHead {
  method: string;
  /** The request-target exactly as sent (path and query, or "*"). */
  target: string;
  /** Byte range of the request-target inside the buffer. */
  targetStart: number;
  targetEnd: number;
  /** "HTTP/1.1", "HTTP/1.0", "ICE/1.0", ... ("" when the client sent none). */
  version: string;
  /** Every header line in order. */
  fields: HeaderField[];
  /** Lowercased name -> value; repeated headers are joined with ", ". */
  headers: ReadonlyMap<string, string>;
  /** Byte offset just past the blank line that ends the head: the first body byte. */
  headEnd: number;
}

export type HeadParse =
  | { kind: 'incomplete' }
  | { kind: 'invalid'; reason: string; headEnd: number }
  | { kind: 'complete'; head: RequestHead };

const LF = 0x0a;
const CR = 0x0d;

/**
 * Offset just past the blank line ending the head, or -1 when it has not arrived yet.
 * Leading blank lines (allowed before a request line) are skipped.
 */
export function findHeadEnd(buf: Uint8Array, from = 0): number {
  const start = skipLeadingBlankLines(buf);
  let i = Math.max(start, from);
  for (;;) {
    const lf = buf.indexOf(LF, i);
    if (lf < 0) return -1;
    if (lf + 1 < buf.length && buf[lf + 1] === LF) return lf + 2;
    if (lf + 2 < buf.length && buf[lf + 1] === CR && buf[lf + 2] === LF) return lf + 3;
    i = lf + 1;
  }
}

function skipLeadingBlankLines(buf: Uint8Array): number {
  let i = 0;
  while (i < buf.length && (buf[i] === CR || buf[i] === LF)) i++;
  return i;
}

// RFC 9110 token characters.
const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * True when the bytes so far can still be the start of a request line. Lets the caller hand
 * TLS handshakes and other binary junk to the HTTP server at once instead of waiting for a
 * head that will never come.
 */
export function looksLikeRequestStart(buf: Uint8Array, start = skipLeadingBlankLines(buf)): boolean {
  const end = Math.min(buf.length, start + 24);
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    if (c === 0x20) return i > start;
    if (!isTokenByte(c)) return false;
  }
  return true;
}

function isTokenByte(c: number): boolean {
  return TOKEN_RE.test(String.fromCharCode(c));
}

/** Parses a complete head; `incomplete` while the blank line has not arrived. */
export function parseRequestHead(buf: Uint8Array): HeadParse {
  const headEnd = findHeadEnd(buf);
  if (headEnd < 0) return { kind: 'incomplete' };
  const text = Buffer.from(buf.buffer, buf.byteOffset, headEnd).toString('latin1');
  const lines = splitLines(text, skipLeadingBlankLines(buf));
  const requestLine = lines.shift();
  if (!requestLine) return { kind: 'invalid', reason: 'empty request', headEnd };
  const parts = requestLine.text.split(' ');
  if (parts.length < 2 || parts.length > 3) {
    return { kind: 'invalid', reason: 'malformed request line', headEnd };
  }
  const [method, target, version = ''] = parts as [string, string, string?];
  if (!TOKEN_RE.test(method)) return { kind: 'invalid', reason: 'malformed method', headEnd };
  if (target.length === 0 || /[\x00-\x20\x7f]/.test(target)) {
    return { kind: 'invalid', reason: 'malformed request target', headEnd };
  }
  if (version !== '' && !/^[A-Z]+\/\d+\.\d+$/.test(version)) {
    return { kind: 'invalid', reason: 'malformed protocol version', headEnd };
  }
  const targetStart = requestLine.start + method.length + 1;
  const fields: HeaderField[] = [];
  const headers = new Map<string, string>();
  for (const line of lines) {
    if (line.text === '') continue; // the terminating blank line
    const colon = line.text.indexOf(':');
    const name = colon > 0 ? line.text.slice(0, colon) : '';
    if (!TOKEN_RE.test(name)) return { kind: 'invalid', reason: 'malformed header line', headEnd };
    const lower = name.toLowerCase();
    const value = line.text.slice(colon + 1).trim();
    fields.push({ name: lower, value, start: line.start, end: line.end });
    const prev = headers.get(lower);
    headers.set(lower, prev === undefined ? value : `${prev}, ${value}`);
  }
  return {
    kind: 'complete',
    head: {
      method,
      target,
      targetStart,
      targetEnd: targetStart + target.length,
      version,
      fields,
      headers,
      headEnd,
    },
  };
}

interface Line {
  text: string;
  start: number;
  end: number;
}

function splitLines(text: string, from: number): Line[] {
  const lines: Line[] = [];
  let i = from;
  while (i < text.length) {
    const lf = text.indexOf('\n', i);
    const stop = lf < 0 ? text.length : lf;
    const textEnd = stop > i && text.charCodeAt(stop - 1) === CR ? stop - 1 : stop;
    lines.push({ text: text.slice(i, textEnd), start: i, end: lf < 0 ? stop : stop + 1 });
    i = stop + 1;
  }
  return lines;
}

/**
 * The origin form of an absolute-form request-target (`http://host/p?q` -> `/p?q`); any other
 * target unchanged. The authority a client names is never ours to trust or to repeat (a
 * redirect echoing it would send listeners to any host), and an origin server may serve
 * absolute form as if the path had been sent alone.
 */
export function originForm(target: string): string {
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(target);
  if (!m) return target;
  const rest = target.slice(m[0].length);
  return rest.startsWith('/') ? rest : `/${rest}`;
}

/** Splits a request-target into its path and query ("?..." or ""). */
export function splitTarget(target: string): { path: string; query: string } {
  const q = target.indexOf('?');
  return q < 0 ? { path: target, query: '' } : { path: target.slice(0, q), query: target.slice(q) };
}

/**
 * A header value as text for people (listclients, the access log): the head is decoded as
 * latin1 so that offsets are bytes, but clients send UTF-8 (a user agent "Müller" arrives as
 * "MÃ¼ller"). Bytes that are not UTF-8 become U+FFFD.
 */
export function headerText(value: string | undefined): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (value === undefined || !/[^\x00-\x7f]/.test(value)) return value;
  return Buffer.from(value, 'latin1').toString('utf8');
}

/** Whether the request carries a body framed by Content-Length or chunked encoding. */
export function hasFramedBody(head: RequestHead): boolean {
  if (head.headers.has('content-length')) return true;
  const te = head.headers.get('transfer-encoding');
  return te !== undefined && /(^|,)\s*chunked\s*$/i.test(te);
}
