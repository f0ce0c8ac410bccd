import type { FastifyInstance } from 'fastify';
import type { HttpAppDeps } from './deps.js';
import { MASTER_REPORT_PATH, masterReportOf } from '../../coordination/master-report.js';

/** `GET /_master`: who this node's view says is master, for peers cut from etcd (peers/). */
export function registerMasterRoute(app: FastifyInstance, deps: HttpAppDeps): void {
  app.get(MASTER_REPORT_PATH, (_request, reply) =>
    reply
      .header('cache-control', 'no-store')
      .type('application/json; charset=utf-8')
      .send(JSON.stringify(masterReportOf(deps.state.current(), deps.nodeName))),
  );
}
