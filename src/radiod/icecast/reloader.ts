import { spawn } from 'node:child_process';
import type { Logger } from '../../common/logger.js';
import type { IcecastPid } from './icecast-pid.js';

/**
 * Makes the running Icecast re-read its config file. Resolves false (and does nothing) when
 * Icecast is not answering yet: a HUP before its handler is installed kills it, and an Icecast
 * that is starting reads the file anyway.
 */
export interface Reloader {
  readonly description: string;
  reload(): Promise<boolean>;
}

/** Whether the local Icecast answers its status page right now. */
export type AnswerProbe = () => Promise<boolean>;

/**
 * SIGHUP to Icecast's pid (see IcecastPid). Callers must only reload an Icecast that already
 * answers: a HUP before its handler is installed kills it.
 */
export class SignalReloader implements Reloader {
  readonly description: string;
  /** The Icecast process already seen answering: its handler is installed, no probe needed. */
  private answeringPid: number | undefined;

  constructor(private readonly opts: { pid: IcecastPid; answers: AnswerProbe }) {
    this.description = `SIGHUP to ${opts.pid.description}`;
  }

  async reload(): Promise<boolean> {
    let pid: number;
    try {
      pid = await this.opts.pid.find();
    } catch (err) {
      // No process (yet): nothing to reload, unless it does answer (then the pid lookup is wrong).
      if (await this.opts.answers()) throw err;
      return false;
    }
    if (pid !== this.answeringPid) {
      // A new process: probe once, so that later reloads cost no HTTP round trip.
      if (!(await this.opts.answers())) return false;
      this.answeringPid = pid;
    }
    process.kill(pid, 'SIGHUP');
    return true;
  }
}

/** An operator-supplied command, run with /bin/sh (e.g. `service icecast2 reload`). */
export class CommandReloader implements Reloader {
  readonly description: string;

  constructor(
    private readonly command: string,
    private readonly answers: AnswerProbe,
    private readonly log: Logger,
    private readonly timeoutMs = 10_000,
  ) {
    this.description = `command: ${command}`;
  }

  async reload(): Promise<boolean> {
    if (!(await this.answers())) return false;
    await this.run();
    return true;
  }

  private run(): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', this.command], { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      const keep = (b: Buffer) => {
        if (output.length < 4000) output += b.toString();
      };
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      const timer = setTimeout(() => child.kill('SIGKILL'), this.timeoutMs);
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (output.trim()) this.log.debug({ output: output.trim() }, 'icecast reload command output');
        if (code === 0) resolve();
        else reject(new Error(`reload command exited with ${code ?? signal}: ${output.trim().slice(0, 500)}`));
      });
    });
  }
}
