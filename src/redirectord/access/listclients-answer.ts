import type { RequestHead } from '../http/request-head.js';
import { documentResponse, plainResponse } from '../http/stream-response.js';
import {
  isAdminAuthorization,
  listclientsRequest,
  renderListclientsJson,
  renderListclientsXml,
  type CurrentListener,
  type ListclientsFormat,
} from './listclients.js';

export interface ListclientsAnswer {
  status: 200 | 400 | 401 | 503;
  response: Buffer;
}

/**
 * The whole answer to `GET /admin/listclients[.json]`: the credentials first (nothing about the
 * listeners, not even a parameter error, reaches someone without them), then the document.
 * Pure: `listeners` is read only once the request is allowed.
 */
export function listclientsAnswer(
  head: RequestHead,
  format: ListclientsFormat,
  query: string,
  adminPassword: string | undefined,
  listeners: () => readonly CurrentListener[],
  now: number,
): ListclientsAnswer {
  if (adminPassword === undefined) {
    return { status: 503, response: plainResponse(503, 'The cluster admin password is not known here yet; try again shortly.', ['Retry-After: 2']) };
  }
  if (!isAdminAuthorization(head.headers.get('authorization'), adminPassword)) {
    return { status: 401, response: plainResponse(401, 'Authentication required.', ['WWW-Authenticate: Basic realm="Icecast2 Server"']) };
  }
  const request = listclientsRequest(format, query);
  if ('error' in request) return { status: 400, response: plainResponse(400, `${request.error}.`) };
  const body = format === 'xml' ? renderListclientsXml(listeners(), request, now) : renderListclientsJson(listeners(), request, now);
  return { status: 200, response: documentResponse(format === 'xml' ? 'text/xml; charset=utf-8' : 'application/json', body) };
}
