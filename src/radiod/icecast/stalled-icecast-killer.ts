import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import type { MonotonicClock } from '../../coordination/clock.js';
import type { IcecastPid } from './icecast-pid.js';
import type { IcecastStallGuard } from './stall-guard.js';

/**
 * Kills the local Icecast when the stall guard gives up on it (stall-guard.ts says why), with
 * SIGKILL: a deadlocked Icecast ignores SIGTERM. Before that, one last question with a longer
 * deadline, content with any HTTP answer: a heavily loaded Icecast may miss the polls' short
 * deadline, or give stats that do not parse, while it still serves its listeners, and a kill
 * cuts every one of them.
 */
export class StalledIcecastKiller {
  /** The kill under way, if any: a slow last question must not let a second one start. */
  private pending: Promise<void> | undefined;

  constructor(
    private readonly deps: {
      guard: IcecastStallGuard;
      pid: IcecastPid;
      /** Whether Icecast sends any HTTP answer within `timeoutMs`. */
      responds: (timeoutMs: number) => Promise<boolean>;
      clock: MonotonicClock;
      log: Logger;
      metrics: Metrics;
      lastQuestionMs?: number;
      /** True once radiod stops: a verdict reached before must not kill after. */
      stopping?: () => boolean;
    },
  ) {}

  /** One stats poll's outcome. */
  observe(answered: boolean): void {
    const now = this.deps.clock();
    if (this.deps.guard.observe(answered, now) !== 'kill' || this.pending) return;
    const silentMs = this.deps.guard.silentForMs(now);
    this.pending = this.kill(silentMs).finally(() => (this.pending = undefined));
  }

  /** Resolves when no kill is under way (tests wait on it). */
  async settled(): Promise<void> {
    await this.pending;
  }

  private async kill(silentMs: number): Promise<void> {
    const { log } = this.deps;
    const silentSeconds = Math.round(silentMs / 1000);
    const verdict = this.deps.guard.state;
    if (await this.deps.responds(this.deps.lastQuestionMs ?? 5000)) {
      log.warn({ silentSeconds }, 'local icecast gave no usable stats for that long, but it answers: not killed');
      return;
    }
    // The last question lasts up to 5 s, and radiod may be told to stop meanwhile: a stopping
    // radiod polls no more, and the operator stopping it may be stopping Icecast too (refused
    // connections, the process still exiting), which is no stall.
    if (this.deps.stopping?.()) {
      log.info({ silentSeconds }, 'local icecast answers nothing, but radiod is stopping: not killed');
      return;
    }
    // The polls go on during the last question: one answered meanwhile ends the silence.
    const now = this.deps.guard.state;
    if (now.name === 'answering' || verdict.name === 'answering' || now.since !== verdict.since) {
      log.warn({ silentSeconds }, 'local icecast answered a poll during the last question: not killed');
      return;
    }
    let pid: number;
    try {
      pid = await this.deps.pid.find();
      if (!(await this.deps.pid.isIcecast(pid))) throw new Error(`pid ${pid} is not an Icecast (a stale pidfile)`);
      // The silence may have begun before this process existed: an Icecast stopped for a while
      // (an operator, a crash loop that systemd gave up on) and then started is silent while it
      // starts, and must not be killed for its predecessor's silence.
      const ageMs = await this.deps.pid.ageMs(pid);
      if (ageMs < this.deps.guard.delayMs) {
        log.warn({ pid, silentSeconds, ageSeconds: Math.round(ageMs / 1000) }, 'local icecast answers nothing, but its process is younger than the stall delay (a fresh start): not killed yet');
        return;
      }
    } catch (err) {
      log.warn({ silentSeconds, err: errorMessage(err) }, 'local icecast answers nothing, and there is no single icecast process to kill');
      return;
    }
    if (this.deps.stopping?.()) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch (err) {
      log.error({ pid, err: errorMessage(err) }, 'could not kill the local icecast that answers nothing');
      return;
    }
    this.deps.metrics.increment('icecast.stall_kills');
    log.error(
      { pid, silentSeconds },
      `local icecast answered nothing for ${silentSeconds} s while its process ran: killed it, so that its supervisor starts it again`,
    );
  }
}
