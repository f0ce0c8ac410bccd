import http from 'node:http';
import { fastify, LogController, type FastifyInstance } from 'fastify';
import type { HttpAppDeps } from './deps.js';
import { LISTENER_ROUTE, createListenerAnswer, registerListenerRoutes, type ListenerAnswer } from './listener-routes.js';
import { registerStatusRoutes } from './status-routes.js';
import { registerMasterRoute } from './master-route.js';

// Re-exported until listener-routes.ts imports it from deps.ts.

/** Header and idle limits for connections handed over by the front door. */
export const HTTP_LIMITS = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000,
  checkIntervalMs: 1_000,
};

export interface HttpApp {
  app: FastifyInstance;
  server: http.Server;
  /** For the front door's `answerListener`: stream redirects answered without node:http. */
  answerListener: ListenerAnswer;
}

/**
 * Builds the listener-facing HTTP application. The returned server never listens by itself:
 * the front door owns the port and hands it every connection that is not a source or stream
 * proxy with `server.emit('connection', socket)`, or that it answered itself through
 * `answerListener`. Tests may call app.inject() or make the server listen.
 */
export async function buildHttpApp(deps: HttpAppDeps): Promise<HttpApp> {
  let server: http.Server | undefined;
  // Typed as the default instance: the routes only need the base logger interface.
  const app: FastifyInstance = fastify({
    loggerInstance: deps.log,
    // One log line per listener redirect would drown the journal; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { maxParamLength: 1024 },
    serverFactory: (handler) => {
      server = http.createServer(
        {
          headersTimeout: HTTP_LIMITS.headersTimeoutMs,
          requestTimeout: HTTP_LIMITS.requestTimeoutMs,
          keepAliveTimeout: HTTP_LIMITS.keepAliveTimeoutMs,
          connectionsCheckingInterval: HTTP_LIMITS.checkIntervalMs,
        },
        handler,
      );
      server.setTimeout(HTTP_LIMITS.idleTimeoutMs);
      return server;
    },
  }) as unknown as FastifyInstance;
  // Every GET route but the listener catch-all: the front door must leave their paths to fastify.
  const otherExact = new Set<string>();
  const otherPrefixes: string[] = [];
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (!methods.some((m) => m === 'GET' || m === 'HEAD') || route.url === LISTENER_ROUTE) return;
    const wild = route.url.search(/[*:]/);
    if (wild === -1) otherExact.add(route.url);
    else otherPrefixes.push(route.url.slice(0, wild));
  });
  const isOtherRoute = (path: string) => otherExact.has(path) || otherPrefixes.some((p) => path.startsWith(p));
  registerListenerRoutes(app, deps);
  registerStatusRoutes(app, deps);
  registerMasterRoute(app, deps);
  app.setNotFoundHandler((_request, reply) => {
    void reply.code(404).type('text/plain; charset=utf-8').send('Not found\n');
  });
  app.setErrorHandler((err: { statusCode?: number; message?: string }, request, reply) => {
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) request.log.error({ err, url: request.url }, 'http request failed');
    void reply.code(status).type('text/plain; charset=utf-8').send(status === 500 ? 'Internal error\n' : 'Bad request\n');
  });
  await app.ready();
  if (!server) throw new Error('fastify did not call the server factory');
  startTimeoutChecks(server);
  return { app, server, answerListener: createListenerAnswer(deps, isOtherRoute) };
}

/**
 * Node only starts enforcing headersTimeout/requestTimeout when a server starts listening;
 * this one never does, so slow-header clients handed over by the front door would never be
 * cut off. http.Server starts its connection checks from its own handler of the documented
 * 'listening' event, so the event is emitted here as listen() would. No other handler of it
 * exists on this server (fastify adds none for a factory-made server; a test checks that
 * slow headers are cut).
 */
function startTimeoutChecks(server: http.Server): void {
  server.emit('listening');
}
