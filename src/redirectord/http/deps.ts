import type { Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import type { ClusterStateSource } from '../../coordination/cluster-view.js';
import type { Balancer } from '../balancer/balancer.js';

/**
 * What the HTTP application and its route files need. In a module of its own so that the
 * route files do not import app.ts, which imports them.
 */
export interface HttpAppDeps {
  /** The current cluster view (ClusterView in production, a fake in tests). */
  state: Pick<ClusterStateSource, 'current'>;
  domain: string;
  nodeName: string;
  balancer: Balancer;
  /** true: listeners go to the chosen node's /_stream proxy; false: straight to its Icecast port. */
  enableIcecastProxy: boolean;
  log: Logger;
  metrics: Metrics;
  /** redirectord's port on every node (80 in production). */
  httpPort: number;
  /** The HTTPS port on every node, when HTTPS is on: redirects made over HTTPS name it. */
  httpsPort?: number;
  /** The HTTPS certificate in use, if any (its expiry is shown in /status.json). */
  certificate?: () => { notAfter: Date } | undefined;
}
