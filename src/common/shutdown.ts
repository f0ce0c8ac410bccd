import type { Logger } from './logger.js';
import { errorMessage } from './errors.js';

interface Step {
  name: string;
  run: () => Promise<unknown> | unknown;
}

/**
 * A daemon's orderly stop: named steps that run one after another in the order they were
 * added, each failure logged and passed over, and one timer that forces the exit if the steps
 * hang (a stuck etcd call must not keep systemd waiting for its own kill timeout).
 *
 * States: `running` until the first signal; `stopping` from then on (later signals are
 * ignored, and startup code that is still waiting checks `stopping` to give up).
 */
export class Shutdown {
  private readonly steps: Step[] = [];
  private state: 'running' | 'stopping' = 'running';

  constructor(
    private readonly log: Logger,
    private readonly forceExitAfterMs: number,
    private readonly exit: (code: number) => void = (code) => process.exit(code),
  ) {}

  get stopping(): boolean {
    return this.state === 'stopping';
  }

  /** Adds a step after those already added. */
  step(name: string, run: () => Promise<unknown> | unknown): this {
    this.steps.push({ name, run });
    return this;
  }

  /** Stops on SIGTERM and SIGINT. */
  onSignals(): this {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void this.stop(signal));
    return this;
  }

  async stop(reason: string): Promise<void> {
    if (this.state === 'stopping') return;
    this.state = 'stopping';
    this.log.info({ reason }, 'shutting down');
    const force = setTimeout(() => {
      this.log.warn({ afterMs: this.forceExitAfterMs }, 'shutdown took too long; exiting');
      this.exit(1);
    }, this.forceExitAfterMs);
    for (const step of this.steps) {
      try {
        await step.run();
      } catch (err) {
        this.log.warn({ step: step.name, err: errorMessage(err) }, 'shutdown step failed');
      }
    }
    clearTimeout(force);
    this.exit(0);
  }
}
