import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TLSSocket } from 'node:tls';
import { requestScheme } from './urls.js';
import type { HttpAppDeps } from './deps.js';
import { CORS_RESPONSE_HEADERS } from './cors.js';
import { renderStatusPage } from './status-page.js';
import { buildStatusView } from './status-view.js';

/** `GET /` (HTML) and `GET /status.json`: the same secret-free view of the cluster. */
export function registerStatusRoutes(app: FastifyInstance, deps: HttpAppDeps): void {
  const view = (request: FastifyRequest) =>
    buildStatusView(deps.state.current(), {
      domain: deps.domain,
      nodeName: deps.nodeName,
      httpPort: deps.httpPort,
      now: Date.now(),
      certificateNotAfter: deps.certificate?.()?.notAfter,
      scheme: requestScheme(deps.httpsPort, (request.socket as Partial<TLSSocket>).encrypted === true),
    });

  app.get('/', (request, reply) => {
    deps.metrics.increment('http.status_page');
    return reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'")
      .send(renderStatusPage(view(request)));
  });

  app.get('/status.json', (request, reply) =>
    reply.headers(CORS_RESPONSE_HEADERS).header('cache-control', 'no-cache').type('application/json; charset=utf-8').send(JSON.stringify(view(request))),
  );
}
