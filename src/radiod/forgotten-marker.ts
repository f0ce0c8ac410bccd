import type { Etcd3 } from 'etcd3';
import type { ThrottledLog } from '../common/logger.js';
import { errorMessage } from '../common/errors.js';
import { followState, type ClusterStateSource } from '../coordination/cluster-view.js';
import { forgottenKey } from '../coordination/keys.js';

/**
 * A running radiod is a member, whatever `radioctl forget-node` said before: while the view
 * shows this node forgotten, its marker is deleted (one delete at a time; the next view change
 * retries a failed one), so that the node is reported down again if it dies later.
 */
export class ForgottenMarkerRemover {
  private deleting = false;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly deps: { client: Etcd3; view: ClusterStateSource; nodeName: string; throttled: ThrottledLog }) {}

  start(): void {
    this.unsubscribe = followState(this.deps.view, () => this.check());
  }

  stop(): void {
    this.unsubscribe?.();
  }

  private check(): void {
    if (this.deleting || !this.deps.view.current().forgotten?.has(this.deps.nodeName)) return;
    this.deleting = true;
    this.deps.client
      .delete()
      .key(forgottenKey(this.deps.nodeName))
      .exec()
      .then(() => this.deps.throttled.clear('forgotten-marker'))
      .catch((err: unknown) => this.deps.throttled.warn('forgotten-marker', { err: errorMessage(err) }, 'cannot delete this node\'s forgotten marker'))
      .finally(() => {
        this.deleting = false;
      });
  }
}
