import type { Etcd3 } from 'etcd3';
import type { Logger } from '../common/logger.js';
import { errorMessage } from '../common/errors.js';
import { leadershipTarget } from './raft-leader-move.js';

const CHECK_EVERY_MS = 2000;

/**
 * While this node is master, moves etcd's raft leadership off this node's member when it lands
 * here (raft-leader-move.ts says why). Checks every few seconds; a failed move is tried again at
 * the next check. A raft leader transfer is etcd's own routine (`etcdctl move-leader`): writes
 * pause for milliseconds, no lease is touched.
 */
export class RaftLeaderPlacement {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly client: Etcd3,
    private readonly opts: { isMaster: () => boolean; ownAddresses: readonly string[]; log: Logger },
  ) {}

  start(): void {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.check().finally(() => this.schedule()), CHECK_EVERY_MS);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    if (!this.opts.isMaster()) return;
    try {
      const status = await this.client.maintenance.status({ deadline: Date.now() + 2000 });
      const list = await this.client.cluster.memberList({}, { deadline: Date.now() + 2000 });
      const target = leadershipTarget({
        answeredBy: status.header.member_id,
        leader: status.leader,
        members: list.members.map((m) => ({ id: m.ID, clientUrls: m.clientURLs, isLearner: m.isLearner })),
        ownAddresses: this.opts.ownAddresses,
      });
      if (target === undefined) return;
      await this.client.maintenance.moveLeader({ targetID: target }, { deadline: Date.now() + 3000 });
      this.opts.log.info({ to: target }, "moved etcd's raft leadership off the master's node");
    } catch (err) {
      this.opts.log.debug({ err: errorMessage(err) }, 'raft leader placement check failed');
    }
  }
}
