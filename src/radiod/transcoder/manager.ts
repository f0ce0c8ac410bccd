import { lstatSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import { errorMessage } from '../../common/errors.js';
import type { ClusterState } from '../../coordination/cluster-state.js';
import type { ClusterStateSource } from '../../coordination/cluster-view.js';
import type { Campaign } from '../../coordination/election.js';
import type { Elector } from '../../coordination/elector.js';
import { transcoderElectionPrefix } from '../../coordination/keys.js';
import type { BackoffOptions } from './backoff.js';
import { DEFAULT_SPREAD, campaignDelayMs, runAction, wantedTranscoders, type SpreadOptions, type TranscoderSpec } from './plan.js';
import { TranscoderProcess, type TranscoderExit } from './process.js';
import { transcoderScript } from './script.js';

export interface TranscoderManagerDeps {
  /** The node's candidacies: every mount's election shares its lease and watch. */
  elector: Elector;
  state: ClusterStateSource;
  nodeName: string;
  liquidsoapPath: string;
  log: Logger;
  metrics: Metrics;
  /**
   * Where the scripts are written. Default: `<tmp>/autoradio-transcoders-<node>`, reused across
   * restarts (so a SIGKILLed radiod leaves nothing new behind) when it is a directory of ours
   * that nobody else can write; otherwise a fresh private directory.
   */
  workDir?: string;
  spread?: SpreadOptions;
  backoff?: BackoffOptions;
  stopGraceMs?: number;
  /** How often leadership is re-checked besides the election's own events. */
  fenceCheckMs?: number;
}

interface Entry {
  mount: string;
  spec: TranscoderSpec;
  campaign: Campaign | undefined;
  campaignTimer: NodeJS.Timeout | undefined;
  process: TranscoderProcess | undefined;
  /** Fingerprint the running process was started with. */
  runningFingerprint: string | undefined;
  /** Start/stop steps of one mount run one after the other. */
  queue: Promise<void>;
  retired: boolean;
  /** Consecutive short runs of liquidsoap on this node. */
  crashes: number;
}

/** A run shorter than this counts as a crash; after this many in a row the node yields the mount. */
const CRASH_RUN_MS = 10_000;
const YIELD_AFTER_CRASHES = 5;

/**
 * Runs this node's share of the cluster's transcoders: one per transcoding mount in the whole
 * cluster. For every such mount the node campaigns in the mount's own election; while it leads,
 * it runs one supervised liquidsoap that reads the source mount from the master's Icecast and
 * sends the re-encoded stream to the master's Icecast.
 *
 * Exactly one per mount: a process runs only while its campaign leads; it is stopped as soon as
 * the campaign is deposed (the election fences itself within the confirmation window of losing
 * etcd, before another node can be elected; see fencing-budget.ts), and a mount's process is
 * always stopped before its candidacy is resigned. All campaigns share the node's Elector, so
 * idle elections cost etcd nothing per mount. Parameter, credential or master changes restart the process.
 */
export class TranscoderManager {
  private readonly entries = new Map<string, Entry>();
  private readonly log: Logger;
  private readonly workDir: string;
  private readonly ownsWorkDir: boolean;
  private unsubscribe: (() => void) | undefined;
  private fenceTimer: NodeJS.Timeout | undefined;
  private readonly refusedLogged = new Map<string, string>();
  private stopped = false;
  private started = false;
  /** The node is drained: it runs no transcoder and campaigns for none until told otherwise. */
  private handingOver = false;

  constructor(private readonly deps: TranscoderManagerDeps) {
    this.log = deps.log.child({ component: 'transcoders' });
    this.ownsWorkDir = deps.workDir === undefined;
    this.workDir = deps.workDir ?? defaultWorkDir(deps.nodeName);
  }

  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.unsubscribe = this.deps.state.onChange((s) => this.reconcile(s));
    this.reconcile(this.deps.state.current());
    this.fenceTimer = setInterval(() => this.fence(), this.deps.fenceCheckMs ?? 500);
    this.fenceTimer.unref();
  }

  /** Mounts whose liquidsoap runs on this node now. */
  running(): string[] {
    return [...this.entries.values()].filter((e) => e.process !== undefined).map((e) => e.mount).sort();
  }

  /**
   * Drained (true): every liquidsoap stops and every candidacy is resigned, as for a deleted
   * mount, so the next candidate of each mount takes it over at once. Undrained (false): the
   * node campaigns again, with the usual spread delays.
   */
  setHandingOver(handOver: boolean): void {
    if (handOver === this.handingOver) return;
    this.handingOver = handOver;
    if (this.started) this.reconcile(this.deps.state.current());
  }

  /** Stops every liquidsoap, then resigns every candidacy. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.unsubscribe?.();
    if (this.fenceTimer) clearInterval(this.fenceTimer);
    await Promise.all([...this.entries.values()].map((e) => this.retire(e)));
    this.deps.metrics.gauge('transcoders.running', 0);
    if (this.ownsWorkDir) rmSync(this.workDir, { recursive: true, force: true });
  }

  private reconcile(state: ClusterState): void {
    if (this.stopped) return;
    const wanted = wantedTranscoders(state, state.nodes.get(this.deps.nodeName)?.addresses ?? []);
    this.logRefused(wanted.refused);
    const specs = this.handingOver ? new Map<string, TranscoderSpec>() : wanted.specs;
    for (const entry of [...this.entries.values()]) {
      if (!specs.has(entry.mount)) void this.retire(entry);
    }
    let leading = this.leadingCount();
    for (const spec of specs.values()) {
      let entry = this.entries.get(spec.mount);
      if (!entry) {
        entry = this.newEntry(spec);
        const delay = campaignDelayMs(
          { node: this.deps.nodeName, mount: spec.mount, liveNodes: state.nodes.keys(), leading, transcodingMounts: specs.size },
          this.deps.spread ?? DEFAULT_SPREAD,
        );
        this.scheduleCampaign(entry, delay);
        // Count it as ours for the rest of this round, so one burst of new mounts spreads too.
        if (delay === 0) leading++;
      }
      entry.spec = spec;
      this.sync(entry);
    }
  }

  private newEntry(spec: TranscoderSpec): Entry {
    const entry: Entry = {
      mount: spec.mount,
      spec,
      campaign: undefined,
      campaignTimer: undefined,
      process: undefined,
      runningFingerprint: undefined,
      queue: Promise.resolve(),
      retired: false,
      crashes: 0,
    };
    this.entries.set(spec.mount, entry);
    return entry;
  }

  private scheduleCampaign(entry: Entry, delayMs: number): void {
    const begin = () => {
      entry.campaignTimer = undefined;
      if (entry.retired) return;
      const log = this.deps.log.child({ component: 'transcoder-election', mount: entry.mount });
      const campaign = this.deps.elector.campaign(
        transcoderElectionPrefix(entry.mount),
        JSON.stringify({ name: this.deps.nodeName }),
        log,
      );
      campaign.on('elected', () => {
        this.deps.metrics.increment('transcoder.elected');
        this.sync(entry);
      });
      campaign.on('deposed', (reason: string) => {
        // Fencing: signal liquidsoap now, without waiting for queued steps.
        if (entry.process) {
          this.log.info({ mount: entry.mount, reason }, 'lost the transcoder election; stopping liquidsoap');
          void entry.process.stop();
        }
        this.deps.metrics.increment('transcoder.deposed');
        this.sync(entry);
      });
      entry.campaign = campaign;
      campaign.start();
    };
    if (delayMs <= 0) begin();
    else {
      this.log.debug({ mount: entry.mount, delayMs }, 'campaigning for the transcoder later');
      entry.campaignTimer = setTimeout(begin, delayMs);
    }
  }

  /** Brings the mount's process in line with its spec and leadership (queued, idempotent). */
  private sync(entry: Entry): void {
    entry.queue = entry.queue.then(() => this.syncNow(entry)).catch((err: unknown) => {
      this.log.error({ mount: entry.mount, err: errorMessage(err) }, 'transcoder step failed');
    });
  }

  private async syncNow(entry: Entry): Promise<void> {
    const leader = !entry.retired && !this.stopped && (entry.campaign?.isLeader ?? false);
    const action = runAction(entry.retired ? undefined : entry.spec, leader, entry.runningFingerprint);
    if (action === 'stop' || action === 'restart') {
      if (action === 'restart') this.log.info({ mount: entry.mount }, 'transcoder settings or master changed; restarting liquidsoap');
      await this.stopProcess(entry);
    }
    if (action === 'start' || action === 'restart') {
      // Leadership may have gone while the old process was stopping.
      if (entry.retired || this.stopped || !entry.campaign?.isLeader) return;
      this.startProcess(entry);
    }
  }

  private startProcess(entry: Entry): void {
    const spec = entry.spec;
    if (!spec.endpoints) return;
    const script = transcoderScript(spec.params, spec.endpoints);
    const scriptPath = join(this.workDir, scriptFileName(entry.mount));
    writeFileSync(scriptPath, script.text, { mode: 0o600 });
    const proc = new TranscoderProcess({
      mount: entry.mount,
      liquidsoapPath: this.deps.liquidsoapPath,
      scriptPath,
      env: script.env,
      log: this.deps.log,
      metrics: this.deps.metrics,
      ...(this.deps.backoff ? { backoff: this.deps.backoff } : {}),
      ...(this.deps.stopGraceMs !== undefined ? { stopGraceMs: this.deps.stopGraceMs } : {}),
    });
    entry.process = proc;
    entry.runningFingerprint = spec.fingerprint;
    proc.on('exit', (e: TranscoderExit) => {
      if (e.restartInMs === undefined || entry.process !== proc) return;
      entry.crashes = e.uptimeMs < CRASH_RUN_MS ? entry.crashes + 1 : 0;
      if (entry.crashes >= YIELD_AFTER_CRASHES) this.yieldMount(entry);
    });
    this.log.info(
      { mount: entry.mount, source: spec.params.source, codec: spec.params.codec, bitrate: spec.params.bitrate,
        master: `${spec.endpoints.icecast.host}:${spec.endpoints.icecast.port}` },
      'starting transcoder',
    );
    proc.start();
    this.deps.metrics.gauge('transcoders.running', this.running().length);
  }

  private async stopProcess(entry: Entry): Promise<void> {
    const proc = entry.process;
    if (!proc) return;
    await proc.stop();
    if (entry.process === proc) {
      entry.process = undefined;
      entry.runningFingerprint = undefined;
    }
    this.deps.metrics.gauge('transcoders.running', this.running().length);
  }

  /**
   * liquidsoap keeps crashing here (missing binary, broken encoder, no memory): stop it and go
   * to the back of the election queue, so that another node gets its turn. A lone node simply
   * wins again and keeps retrying.
   */
  private yieldMount(entry: Entry): void {
    entry.crashes = 0;
    this.log.warn({ mount: entry.mount }, 'liquidsoap keeps failing on this node; letting another node take the transcoder');
    this.deps.metrics.increment('transcoder.yielded');
    entry.queue = entry.queue
      .then(async () => {
        if (entry.retired || this.stopped) return;
        await this.stopProcess(entry);
        const old = entry.campaign;
        entry.campaign = undefined;
        await old?.stop();
        if (!entry.retired && !this.stopped) this.scheduleCampaign(entry, 0);
      })
      .catch((err: unknown) => this.log.warn({ mount: entry.mount, err: errorMessage(err) }, 'cannot yield transcoder'));
  }

  /** The mount no longer wants a transcoder here: stop liquidsoap first, then resign. */
  private retire(entry: Entry): Promise<void> {
    if (!entry.retired) {
      entry.retired = true;
      if (this.entries.get(entry.mount) === entry) this.entries.delete(entry.mount);
      if (entry.campaignTimer) clearTimeout(entry.campaignTimer);
      entry.process?.stop().catch(() => {});
      entry.queue = entry.queue
        .then(async () => {
          await this.stopProcess(entry);
          // Before resigning: a successor on this node writes the same file once it leads.
          rmSync(join(this.workDir, scriptFileName(entry.mount)), { force: true });
          await entry.campaign?.stop();
        })
        .catch((err: unknown) => this.log.warn({ mount: entry.mount, err: errorMessage(err) }, 'cannot retire transcoder'));
    }
    return entry.queue;
  }

  /**
   * Belt and braces next to the election's events: `isLeader` is a fenced getter that can turn
   * false (lease unconfirmed) and true again without an event in between, so leadership is also
   * polled. No process without a leading campaign, and no leading campaign without a process.
   */
  private fence(): void {
    for (const entry of this.entries.values()) {
      const leader = entry.campaign?.isLeader ?? false;
      if (entry.process && !leader) {
        void entry.process.stop();
        this.sync(entry);
      } else if (!entry.process && leader && entry.spec.endpoints) {
        this.sync(entry);
      }
    }
  }

  private leadingCount(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.campaign?.isLeader) n++;
    return n;
  }

  private logRefused(refused: Map<string, string>): void {
    for (const [mount, reason] of refused) {
      if (this.refusedLogged.get(mount) === reason) continue;
      this.refusedLogged.set(mount, reason);
      this.log.error({ mount, reason }, 'cannot run a transcoder for this mount');
    }
    for (const mount of [...this.refusedLogged.keys()]) if (!refused.has(mount)) this.refusedLogged.delete(mount);
  }
}

function defaultWorkDir(nodeName: string): string {
  const dir = join(tmpdir(), `autoradio-transcoders-${nodeName.replace(/[^A-Za-z0-9-]/g, '_')}`);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch {
    // Exists already: fine if it is ours, checked below.
  }
  try {
    const st = lstatSync(dir);
    const uid = process.getuid?.();
    if (st.isDirectory() && (uid === undefined || st.uid === uid) && (st.mode & 0o022) === 0) return dir;
  } catch {
    // Fall through to a private directory.
  }
  return mkdtempSync(join(tmpdir(), 'autoradio-transcoders-'));
}

/** One file per mount; the hash keeps /a/b and /a_b apart. */
export function scriptFileName(mount: string): string {
  const readable = mount.slice(1).replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80);
  const hash = createHash('sha256').update(mount).digest('hex').slice(0, 8);
  return `${readable}-${hash}.liq`;
}
