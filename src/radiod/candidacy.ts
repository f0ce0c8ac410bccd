import type { Logger } from '../common/logger.js';
import { errorMessage } from '../common/errors.js';
import type { Campaign } from '../coordination/election.js';
import type { Elector } from '../coordination/elector.js';
import { MASTER_ELECTION_PREFIX } from '../coordination/keys.js';
import type { MasterInfo } from '../coordination/cluster-state.js';

/**
 * master: elected and lease confirmed. fenced: was first in the queue but cannot confirm its
 * lease (etcd unreachable): it must not take new sources, which another master may be taking
 * already, but the streams it carries need no exclusive right and keep flowing. taking-over:
 * first in the queue after peers deposed the master, waiting out its window (coordination/
 * deposition.ts): nothing changes here yet, the relays keep the listeners until the source
 * arrives. none: another node leads, or this one is not a candidate.
 */
export type MasterRole = 'master' | 'fenced' | 'taking-over' | 'none';

/**
 * This node's candidacy for master, held only while the local Icecast works: a master whose
 * Icecast is down would take every source and serve nobody. A Campaign cannot restart after
 * stop(), so each period of candidacy gets a fresh one; the Elector queues it behind the
 * others once the previous one's key is deleted. Presence stays on its own lease meanwhile.
 */
export class MasterCandidacy {
  private campaign: Campaign | undefined;
  private stopping: Promise<void> = Promise.resolve();

  constructor(
    private readonly elector: Elector,
    private readonly info: MasterInfo,
    private readonly opts: { log: Logger; onChange: (role: MasterRole) => void },
  ) {}

  get active(): boolean {
    return this.campaign !== undefined;
  }

  get isMaster(): boolean {
    return this.campaign?.isLeader ?? false;
  }

  get role(): MasterRole {
    const c = this.campaign;
    if (!c) return 'none';
    if (c.isLeader) return 'master';
    if (c.takingOver) return 'taking-over';
    return c.heldFirstPlace ? 'fenced' : 'none';
  }

  start(): void {
    if (this.campaign) return;
    const campaign = this.elector.campaign(MASTER_ELECTION_PREFIX, JSON.stringify(this.info), this.opts.log);
    campaign.on('change', () => this.campaign === campaign && this.opts.onChange(this.role));
    this.campaign = campaign;
    campaign.start();
    this.opts.log.info('campaigning for master');
  }

  /** Resigns at once (the next candidate takes over within milliseconds). */
  stop(reason: string): Promise<void> {
    const campaign = this.campaign;
    if (!campaign) return this.stopping;
    this.campaign = undefined;
    this.opts.log.info({ reason }, 'withdrawing from the master election');
    this.opts.onChange('none');
    this.stopping = campaign.stop().catch((err: unknown) => {
      this.opts.log.warn({ err: errorMessage(err) }, 'resigning failed; the lease will expire');
    });
    return this.stopping;
  }
}
