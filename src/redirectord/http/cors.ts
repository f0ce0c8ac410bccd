/**
 * CORS headers for stream and playlist answers, shared by the listener routes and the stream
 * proxy: a browser player on another origin may send `Icy-MetaData` and `Range`, and read the
 * ICY headers Icecast answers with. Pure constants; no secrets are ever behind these URLs.
 */

/** Response headers a browser script may read besides the CORS-safelisted ones. */
export const ICY_EXPOSED_HEADERS: readonly string[] = [
  'icy-metaint',
  'icy-name',
  'icy-description',
  'icy-genre',
  'icy-br',
  'icy-url',
  'icy-pub',
  'icy-metadata',
  'ice-audio-info',
  'content-range',
  'accept-ranges',
];

/** Request headers a browser player may send with a stream request. */
export const CORS_ALLOWED_REQUEST_HEADERS: readonly string[] = ['Icy-MetaData', 'Range', 'Cache-Control', 'Pragma'];

export const CORS_ALLOWED_METHODS = 'GET, HEAD, OPTIONS';

/** On every stream and playlist answer (redirects, errors and the proxied stream itself). */
export const CORS_RESPONSE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'access-control-allow-origin': '*',
  'access-control-expose-headers': ICY_EXPOSED_HEADERS.join(', '),
});

/** The answer to an `OPTIONS` preflight on a stream or playlist URL (status 204). */
export const CORS_PREFLIGHT_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  ...CORS_RESPONSE_HEADERS,
  'access-control-allow-methods': CORS_ALLOWED_METHODS,
  'access-control-allow-headers': CORS_ALLOWED_REQUEST_HEADERS.join(', '),
  'access-control-max-age': '86400',
  allow: CORS_ALLOWED_METHODS,
});
