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
  'icy-url',
  'icy-br',
  'icy-pub',
  'icy-metadata',
  'icy-audio-info',
  'ice-audio-info',
  'Content-Type',
  'Content-Length',
  'Content-Range',
  'Accept-Ranges',
];

/** Request headers a browser player may send with a stream request. */
export const CORS_ALLOWED_REQUEST_HEADERS: readonly string[] = ['Icy-MetaData', 'Range', 'Content-Type'];

export const CORS_ALLOWED_METHODS = 'GET, HEAD, OPTIONS';

export const CORS_MAX_AGE_SECONDS = 86400;

/** The same values as plain strings, for code that writes raw response heads (the stream proxy). */
export const STREAM_CORS = Object.freeze({
  allowOrigin: '*',
  allowMethods: CORS_ALLOWED_METHODS,
  allowHeaders: CORS_ALLOWED_REQUEST_HEADERS.join(', '),
  exposeHeaders: ICY_EXPOSED_HEADERS.join(', '),
  maxAgeSeconds: CORS_MAX_AGE_SECONDS,
});

/** On every stream and playlist answer (redirects, errors and the proxied stream itself). */
export const CORS_RESPONSE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'access-control-allow-origin': STREAM_CORS.allowOrigin,
  'access-control-expose-headers': STREAM_CORS.exposeHeaders,
});

/** The answer to an `OPTIONS` preflight on a stream or playlist URL (status 204). */
export const CORS_PREFLIGHT_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  ...CORS_RESPONSE_HEADERS,
  'access-control-allow-methods': STREAM_CORS.allowMethods,
  'access-control-allow-headers': STREAM_CORS.allowHeaders,
  'access-control-max-age': String(STREAM_CORS.maxAgeSeconds),
  allow: STREAM_CORS.allowMethods,
});
