import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import type { Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import { errorMessage } from '../../common/errors.js';
import { DEFAULT_BACKOFF, RestartBackoff, type BackoffOptions } from './backoff.js';
import { RunOutput } from './run-output.js';

export interface TranscoderProcessOptions {
  /** The mount this process feeds: in every log line and in its command line. */
  mount: string;
  liquidsoapPath: string;
  scriptPath: string;
  /** Added to a minimal environment (the script reads its strings from here). */
  env: Record<string, string>;
  log: Logger;
  metrics?: Metrics;
  backoff?: BackoffOptions;
  /** SIGTERM, then SIGKILL after this long. liquidsoap 2.1 usually exits within a second. */
  stopGraceMs?: number;
  /** The program that sets the parent-death signal and execs liquidsoap. */
  setprivPath?: string;
}

export interface TranscoderExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  uptimeMs: number;
  /** When it will be started again; undefined when it was stopped on purpose. */
  restartInMs: number | undefined;
}

/** The argv word that names the mount, so `ps` and `pgrep -f` can tell transcoders apart. */
export function transcoderLabel(mount: string): string {
  return `autoradio-transcoder=${mount}`;
}

/**
 * One supervised liquidsoap: started, restarted with exponential backoff when it exits,
 * stopped on request. Its log lines go to our logger, tagged with the mount.
 *
 * No orphans: liquidsoap runs as `setpriv --pdeathsig SIGKILL -- liquidsoap ...` (setpriv
 * execs, so the pid we hold is liquidsoap's), so the kernel kills it when radiod dies, even by
 * SIGKILL. It also leads its own process group, and stop() signals the whole group.
 *
 * Events: 'spawn' (pid), 'exit' (TranscoderExit).
 */
/** The events a TranscoderProcess emits, with their arguments. */
export interface TranscoderProcessEvents {
  spawn: [pid: number | undefined];
  exit: [exit: TranscoderExit];
}

export class TranscoderProcess extends EventEmitter<TranscoderProcessEvents> {
  private child: ChildProcess | undefined;
  private startedAt = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private exited: Promise<void> = Promise.resolve();
  private readonly backoff: RestartBackoff;
  private restartCount = 0;
  private readonly log: Logger;
  /** The last script rejection logged as an error: the same one again is only debug. */
  private lastRejection: string | undefined;

  constructor(private readonly opts: TranscoderProcessOptions) {
    super();
    this.backoff = new RestartBackoff(opts.backoff ?? DEFAULT_BACKOFF);
    this.log = opts.log.child({ mount: opts.mount, component: 'transcoder' });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts of liquidsoap after the first one. */
  get restarts(): number {
    return this.restartCount;
  }

  start(): void {
    if (this.stopping || this.child || this.restartTimer) return;
    this.launch();
  }

  /** Stops liquidsoap (SIGTERM, then SIGKILL) and any pending restart; resolves once it is gone. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) {
      clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
    }
    const child = this.child;
    if (child) {
      this.signal(child, 'SIGTERM');
      const kill = setTimeout(() => this.signal(child, 'SIGKILL'), this.opts.stopGraceMs ?? 3000);
      await this.exited;
      clearTimeout(kill);
    }
  }

  private launch(): void {
    this.restartTimer = undefined;
    if (this.stopping) return;
    const args = [
      '--pdeathsig', 'SIGKILL', '--',
      this.opts.liquidsoapPath, this.opts.scriptPath, '--', transcoderLabel(this.opts.mount),
    ];
    const env = { ...liquidsoapEnv(process.env), ...this.opts.env };
    let child: ChildProcess;
    try {
      // detached: its own session and process group, so a terminal's ^C or a signal to
      // radiod's group does not reach it behind our back, and stop() can signal the group.
      child = spawn(this.opts.setprivPath ?? 'setpriv', args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'cannot start liquidsoap');
      this.scheduleRestart(0, null, null);
      return;
    }
    this.child = child;
    this.startedAt = Date.now();
    let resolveExited!: () => void;
    this.exited = new Promise((r) => (resolveExited = r));
    let done = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (done) return;
      done = true;
      this.child = undefined;
      resolveExited();
      this.scheduleRestart(Date.now() - this.startedAt, code, signal);
    };
    child.once('error', (err) => {
      this.log.error({ err: errorMessage(err) }, 'cannot start liquidsoap');
      finish(null, null);
    });
    child.once('exit', (code, signal) => finish(code, signal));
    if (child.pid !== undefined) {
      this.log.info({ pid: child.pid, restarts: this.restartCount }, 'liquidsoap started');
      this.opts.metrics?.increment('transcoder.starts');
      this.emit('spawn', child.pid);
    }
    const pid = child.pid;
    const output = new RunOutput();
    if (child.stdout) this.forwardLines(child.stdout, pid, output);
    if (child.stderr) this.forwardLines(child.stderr, pid, output);
    // 'close' comes after the last output line, which 'exit' may precede.
    child.once('close', (code) => this.reportRun(output, code, pid));
  }

  /** A rejected script is an error, logged once with liquidsoap's reason; other preamble as is. */
  private reportRun(output: RunOutput, code: number | null, pid: number | undefined): void {
    const rejection = output.scriptRejection(code);
    if (rejection === undefined) {
      for (const line of output.drain()) this.logLine(line, pid);
      return;
    }
    if (rejection === this.lastRejection) {
      this.log.debug({ pid, code, reason: rejection }, 'liquidsoap rejects the transcoder script again');
      return;
    }
    this.lastRejection = rejection;
    this.log.error(
      { pid, code, reason: rejection, liquidsoap: this.opts.liquidsoapPath, script: this.opts.scriptPath },
      'liquidsoap rejects the transcoder script',
    );
  }

  private scheduleRestart(uptimeMs: number, code: number | null, signal: NodeJS.Signals | null): void {
    let restartInMs: number | undefined;
    if (this.stopping) {
      this.log.info({ code, signal, uptimeMs }, 'liquidsoap stopped');
    } else {
      restartInMs = this.backoff.afterExit(uptimeMs);
      this.log.warn({ code, signal, uptimeMs, restartInMs }, 'liquidsoap exited; restarting');
      this.opts.metrics?.increment('transcoder.crashes');
      this.restartTimer = setTimeout(() => {
        this.restartCount++;
        this.launch();
      }, restartInMs);
    }
    this.emit('exit', { code, signal, uptimeMs, restartInMs } satisfies TranscoderExit);
  }

  private signal(child: ChildProcess, sig: NodeJS.Signals): void {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, sig);
    } catch {
      // The group is gone already; fall back to the process itself.
      try {
        child.kill(sig);
      } catch {
        /* already exited */
      }
    }
  }

  private forwardLines(stream: NodeJS.ReadableStream, pid: number | undefined, output: RunOutput): void {
    const rl = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
    rl.on('line', (line) => {
      if (!line.trim()) return;
      const timestamped = LIQ_LINE_RE.test(line);
      if (output.keep(line, timestamped)) return;
      // The script was accepted, so what waited was no rejection.
      for (const waiting of output.drain()) this.logLine(waiting, pid);
      this.logLine(line, pid);
    });
  }

  private logLine(line: string, pid: number | undefined): void {
    const { level, fields, msg } = parseLiquidsoapLine(line);
    this.log[level]({ pid, ...fields }, msg);
  }
}

/**
 * The environment liquidsoap starts with: a minimal one (no secrets of radiod's own), plus where
 * to keep its cache. liquidsoap 2.3 reads LIQ_CACHE_USER_DIR, else XDG_CACHE_HOME, else
 * $HOME/.cache, which for Icecast's system user is under /usr/share and read-only under the
 * unit; the unit's CacheDirectory= (CACHE_DIRECTORY) is the writable place.
 */
export function liquidsoapEnv(parent: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = { PATH: parent['PATH'] ?? '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' };
  if (parent['HOME']) env['HOME'] = parent['HOME'];
  if (parent['XDG_CACHE_HOME']) env['XDG_CACHE_HOME'] = parent['XDG_CACHE_HOME'];
  const cache = parent['LIQ_CACHE_USER_DIR'] || parent['CACHE_DIRECTORY']?.split(':')[0];
  if (cache) env['LIQ_CACHE_USER_DIR'] = cache;
  return env;
}

type LogLevel = 'error' | 'warn' | 'info' | 'debug';

/** `2026/11/22 02:20:45 [clock.main:3] Streaming loop starts` */
const LIQ_LINE_RE = /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[([^\]]+):(\d)\] (.*)$/;
/** Start-up chatter of Debian's build that says nothing about this stream. */
const NOISE_RE = /pgs_frame_merge|bwrap|Could not find dynamic module|camlimages|Video frame size|gstreamer\.loader/;

/** A liquidsoap (or ffmpeg) output line -> pino level and fields. Exported for tests. */
export function parseLiquidsoapLine(line: string): { level: LogLevel; fields: Record<string, string>; msg: string } {
  const m = LIQ_LINE_RE.exec(line);
  if (!m) return { level: NOISE_RE.test(line) ? 'debug' : 'info', fields: { from: 'liquidsoap' }, msg: line };
  const [, source, levelDigit, msg] = m as unknown as [string, string, string, string];
  const n = Number(levelDigit);
  // liquidsoap levels: 1 critical, 2 severe, 3 important, 4 info, 5 debug.
  let level: LogLevel = n <= 1 ? 'error' : n === 2 ? 'warn' : n === 3 ? 'info' : 'debug';
  if (NOISE_RE.test(msg)) level = 'debug';
  return { level, fields: { from: 'liquidsoap', source }, msg };
}
