import type { Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import { errorMessage } from '../../common/errors.js';
import type { ClusterStateSource } from '../../coordination/cluster-view.js';
import { isLoaded, type ClusterState, type MasterInfo } from '../../coordination/cluster-state.js';
import type { IcecastSecrets } from '../../coordination/icecast-secrets.js';
import { renderIcecastConfig, sameRenderInputs, type IcecastNodeSettings, type RenderInputs } from './render.js';
import { writeConfigIfChanged } from './config-writer.js';
import type { Reloader } from './reloader.js';
import type { MasterRole } from '../candidacy.js';
import type { Mount } from '../../coordination/mount.js';
import { generatePassword } from '../../coordination/icecast-secrets.js';
import { monotonicNow } from '../../coordination/clock.js';
import { IdleRelays } from './idle-relays.js';

export interface IcecastControllerOptions {
  source: ClusterStateSource;
  node: IcecastNodeSettings;
  secrets: IcecastSecrets;
  configPath: string;
  reloader: Reloader;
  /** Called after this node stops being master, before the relay config goes live. */
  onDemoted?: () => Promise<void>;
  /** Called on the master after a changed config went live (e.g. to drop sources of deleted mounts). */
  afterMasterReload?: () => Promise<void>;
  log: Logger;
  metrics: Metrics;
  /** Coalesces bursts of changes; well under the one-second propagation target. */
  debounceMs?: number;
  /** How long a mount stays off air before its relay waits for a listener (default IDLE_RELAY_AFTER_MS). */
  idleRelayAfterMs?: number;
}

/** Icecast rereads its config within about a second of a HUP; HUPs closer than this may merge. */
const RELOAD_SETTLE_MS = 1500;

interface ConfigPlan {
  /** The state to render: the mounts carry locked passwords when fenced. */
  state: ClusterState;
  fenced: boolean;
  isMaster: boolean;
  master: MasterInfo | undefined;
  /** What the render depends on, before locking (compared to skip renders that change nothing). */
  inputs: RenderInputs;
}

const NO_MOUNTS: ReadonlySet<string> = new Set();

/**
 * Keeps icecast.xml equal to render(cluster state, master, settings) and reloads Icecast when
 * the file changed. Runs are serialized; a change arriving during a run triggers one more.
 */
export class IcecastController {
  private role: MasterRole = 'none';
  /** Replaces every source password while fenced; never stored anywhere, so nobody knows it. */
  private readonly lockPassword = generatePassword(24);
  /** The last other node seen as master: relays keep pointing at it while an election runs. */
  private lastOtherMaster: MasterInfo | undefined;
  private effectiveMasterName: string | undefined;
  private renderedAsMaster = false;
  /** What the file on disk was last rendered from; an equal input needs no render at all. */
  private renderedFrom: RenderInputs | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private reloadPending = false;
  private stopped = false;
  private unsubscribe: (() => void) | undefined;
  /** When the newest pending change was noticed, for the propagation timing metric. */
  private changeNoticedAt: number | undefined;
  private lastReloadAt = 0;
  private confirmTimer: NodeJS.Timeout | undefined;
  private writing: Promise<unknown> = Promise.resolve();
  /** Mounts long off air: their relays wait for a listener. Re-checked at every view change (each node reports every 30 s at least). */
  private readonly idleRelays: IdleRelays;

  constructor(private readonly opts: IcecastControllerOptions) {
    this.idleRelays = new IdleRelays(opts.idleRelayAfterMs);
  }

  /**
   * Writes the first config once the cluster view is loaded (Icecast may not be up yet) and
   * follows the cluster from then on. Until then the file on disk stays as it is: an empty
   * view is "not read yet", and rendering it would drop every mount and relay.
   */
  async start(): Promise<void> {
    this.unsubscribe = this.opts.source.onChange(() => this.schedule());
    await this.syncNow();
  }

  setRole(role: MasterRole): void {
    if (role === this.role) return;
    this.role = role;
    if (role === 'fenced') void this.lockSourcesNow();
    this.schedule(0);
  }

  /** Icecast came (back) up: it may have read an older file, or missed a skipped reload. */
  icecastStarted(): void {
    this.reloadPending = true;
    this.renderedFrom = undefined;
    this.schedule(0);
  }

  schedule(delayMs = this.opts.debounceMs ?? 50): void {
    if (this.stopped) return;
    this.changeNoticedAt ??= Date.now();
    if (this.timer) {
      if (delayMs > 0) return;
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.syncNow();
    }, delayMs);
  }

  async syncNow(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.sync()
      .catch((err: unknown) => {
        this.opts.metrics.increment('errors.icecast_config');
        this.opts.log.error({ err: errorMessage(err) }, 'cannot update the Icecast configuration; retrying');
        setTimeout(() => this.schedule(0), 1000).unref();
      })
      .finally(() => {
        this.running = undefined;
        if (this.again && !this.stopped) {
          this.again = false;
          void this.syncNow();
        }
      });
    return this.running;
  }

  /** Which master the config follows: us, the elected one, or the last one known. */
  private masterToFollow(): MasterInfo | undefined {
    const elected = this.opts.source.current().master;
    if (elected && elected.name !== this.opts.node.name) this.lastOtherMaster = elected;
    return this.lastOtherMaster;
  }

  /**
   * What the config must say for the current role and cluster state; undefined while the view
   * is not loaded (an empty view is "not read yet", never "no mounts").
   */
  private plan(): ConfigPlan | undefined {
    let state = this.opts.source.current();
    if (!isLoaded(state)) return undefined;
    const elected = state.master;
    // A fenced master keeps serving as master until etcd names someone else: its streams go
    // on (a lost quorum must not silence the radio), but with locked source passwords no new
    // source can connect here, where it might race a newly elected master.
    const fenced = this.role === 'fenced' && (elected === undefined || elected.name === this.opts.node.name);
    const isMaster = this.role === 'master' || fenced;
    const master = isMaster ? undefined : this.masterToFollow();
    // Relays through the front door do not name the master: a new one changes nothing here.
    const idle = this.idleRelays.observe(state, monotonicNow());
    const onDemandRelays = isMaster ? NO_MOUNTS : idle;
    const inputs: RenderInputs = { mounts: state.mounts, isMaster, fenced, master: this.opts.node.relayVia ? undefined : master, onDemandRelays };
    if (fenced) state = { ...state, mounts: lockSources(state.mounts, this.lockPassword) };
    return { state, fenced, isMaster, master, inputs };
  }

  /** Runs one render-and-write at a time (milliseconds), shared by sync() and fencing. */
  private exclusiveWrite<T>(step: () => Promise<T>): Promise<T> {
    const run = this.writing.then(step);
    this.writing = run.catch(() => {});
    return run;
  }

  /**
   * Fencing jumps the queue: a sync may be running, even stuck in a slow reload command. Icecast
   * already refuses new sources at once (it asks radiod's source authenticator, which follows the
   * lease); the locked passwords make the file say the same, for whoever reads it, as soon as
   * possible. Writes the locked config and reloads at once; the queued sync that follows finds
   * the file as it should be.
   */
  private async lockSourcesNow(): Promise<void> {
    const since = performance.now();
    try {
      const locked = await this.exclusiveWrite(async () => {
        const plan = this.plan();
        // Not fenced any more, or etcd already names another master: the normal sync handles it.
        if (!plan?.fenced || this.stopped) return false;
        const xml = renderIcecastConfig({ state: plan.state, isMaster: true, master: undefined, node: this.opts.node, secrets: this.opts.secrets });
        await writeConfigIfChanged(this.opts.configPath, xml);
        this.renderedFrom = plan.inputs;
        this.renderedAsMaster = true;
        return true;
      });
      if (!locked) return;
      const reloaded = await this.opts.reloader.reload();
      this.opts.log.info({ ms: Math.round(performance.now() - since), reloaded }, 'fenced: source passwords locked');
    } catch (err) {
      this.opts.metrics.increment('errors.icecast_reload');
      this.opts.log.error({ err: errorMessage(err) }, 'cannot lock the source passwords; the queued sync retries');
    }
  }

  private async sync(): Promise<void> {
    const plan = this.plan();
    if (plan === undefined) {
      this.opts.log.debug('cluster state not read yet; icecast.xml left as it is');
      return;
    }
    const noticedAt = this.changeNoticedAt;
    this.changeNoticedAt = undefined;
    const roleAtStart = this.role;
    const { state, fenced, isMaster, master, inputs } = plan;

    const masterName = isMaster ? this.opts.node.name : master?.name;
    if (masterName !== this.effectiveMasterName) {
      this.opts.log.info({ master: masterName ?? null, self: isMaster, fenced }, 'following a new master');
      if (this.effectiveMasterName !== undefined) this.opts.metrics.increment('master_changes');
      this.effectiveMasterName = masterName;
    }
    if (this.renderedAsMaster && !isMaster) {
      // Sources still attached here must reconnect (through the proxies) to the new master,
      // and the relays we are about to start need their local mount names free.
      await this.opts.onDemoted?.().catch((err: unknown) => {
        this.opts.log.warn({ err: errorMessage(err) }, 'cannot drop local sources after losing mastership');
      });
    }

    const changed = await this.exclusiveWrite(async () => {
      // The role changed meanwhile (fencing may have written already): the next run renders it.
      if (this.role !== roleAtStart) return undefined;
      this.renderedAsMaster = isMaster;
      // Another node's status report changes nothing here: no render, no write, no reload.
      if (sameRenderInputs(this.renderedFrom, inputs)) return false;
      const xml = renderIcecastConfig({ state, isMaster, master: inputs.master, node: this.opts.node, secrets: this.opts.secrets, onDemandRelays: inputs.onDemandRelays });
      const wrote = await writeConfigIfChanged(this.opts.configPath, xml);
      this.renderedFrom = inputs;
      this.opts.metrics.increment('icecast.config_renders');
      return wrote;
    });
    if (changed === undefined) return;
    if (changed) {
      this.opts.metrics.increment('icecast.config_writes');
      this.opts.log.info(
        {
          path: this.opts.configPath,
          mounts: state.mounts.size,
          master: masterName ?? null,
          isMaster,
          fenced,
          ...(noticedAt !== undefined ? { delayMs: Date.now() - noticedAt } : {}),
        },
        'icecast config written',
      );
      this.reloadPending = true;
    }
    if (this.reloadPending) await this.reload();
    if (changed && isMaster && !this.reloadPending) {
      await this.opts.afterMasterReload?.().catch((err: unknown) => {
        this.opts.log.warn({ err: errorMessage(err) }, 'cannot drop sources of deleted mounts');
      });
    }
    if (changed && noticedAt !== undefined) this.opts.metrics.timing('icecast.config_propagation', Date.now() - noticedAt);
  }

  private async reload(): Promise<void> {
    try {
      if (!(await this.opts.reloader.reload())) {
        // Icecast reads the file when it starts; icecastStarted() reloads once it answers.
        this.opts.log.debug('icecast is not answering; reload deferred until it is up');
        return;
      }
      this.reloadPending = false;
      this.opts.metrics.increment('icecast.reloads');
      this.opts.log.info({ how: this.opts.reloader.description }, 'icecast reloaded');
      const now = Date.now();
      if (now - this.lastReloadAt < RELOAD_SETTLE_MS) this.scheduleConfirmation();
      this.lastReloadAt = now;
    } catch (err) {
      this.opts.metrics.increment('errors.icecast_reload');
      throw new Error(`reload failed (${this.opts.reloader.description}): ${errorMessage(err)}`);
    }
  }

  /**
   * A HUP only sets a flag that Icecast's slave thread checks once a second; two HUPs close
   * together can be folded into one reread that may have started before the second write.
   * One more HUP once things settled makes sure the newest file is the one Icecast runs with;
   * a HUP with an unchanged file leaves sources, relays and listeners alone.
   */
  private scheduleConfirmation(): void {
    clearTimeout(this.confirmTimer);
    this.confirmTimer = setTimeout(() => {
      this.confirmTimer = undefined;
      this.reloadPending = true;
      this.schedule(0);
    }, RELOAD_SETTLE_MS);
    this.confirmTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.confirmTimer);
    clearTimeout(this.timer);
    this.unsubscribe?.();
    await this.running;
  }
}

/** The mounts with every source password replaced: connected sources stay, new ones get 401. */
export function lockSources(mounts: ReadonlyMap<string, Mount>, lockPassword: string): Map<string, Mount> {
  return new Map([...mounts].map(([path, m]) => [path, { ...m, password: lockPassword }]));
}
