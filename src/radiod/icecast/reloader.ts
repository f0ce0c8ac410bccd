import { execFile, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { Logger } from '../../common/logger.js';

/** Makes the running Icecast re-read its config file. */
export interface Reloader {
  readonly description: string;
  reload(): Promise<void>;
}

function pidof(name: string): Promise<number[]> {
  return new Promise((resolve, reject) => {
    execFile('pidof', [name], { timeout: 2000 }, (err, stdout) => {
      // pidof exits 1 when nothing runs under that name.
      if (err && (err as { code?: unknown }).code !== 1) return reject(err);
      resolve(
        stdout
          .split(/\s+/)
          .filter((s) => /^\d+$/.test(s))
          .map(Number),
      );
    });
  });
}

/**
 * SIGHUP to Icecast. The pid comes from the pidfile the config names (radiod renders it, so
 * it knows), else from `pidof icecast2` (Debian's service runs exactly one). Callers must only
 * reload an Icecast that already answers: a HUP before its handler is installed kills it.
 */
export class SignalReloader implements Reloader {
  readonly description: string;

  constructor(
    private readonly opts: { pidfile?: string; processName?: string },
  ) {
    this.description = opts.pidfile ? `SIGHUP to the pid in ${opts.pidfile}` : `SIGHUP to ${this.name}`;
  }

  private get name(): string {
    return this.opts.processName ?? 'icecast2';
  }

  async findPid(): Promise<number> {
    if (this.opts.pidfile) {
      const text = (await readFile(this.opts.pidfile, 'utf8')).trim();
      const pid = Number(text);
      if (!/^\d+$/.test(text) || pid <= 1) throw new Error(`pidfile ${this.opts.pidfile} holds no pid ("${text}")`);
      return pid;
    }
    const pids = await pidof(this.name);
    if (pids.length === 0) throw new Error(`no ${this.name} process is running`);
    if (pids.length > 1) {
      throw new Error(`${pids.length} ${this.name} processes are running (${pids.join(', ')}); set a pidfile to pick one`);
    }
    return pids[0]!;
  }

  async reload(): Promise<void> {
    process.kill(await this.findPid(), 'SIGHUP');
  }
}

/** An operator-supplied command, run with /bin/sh (e.g. `service icecast2 reload`). */
export class CommandReloader implements Reloader {
  readonly description: string;

  constructor(
    private readonly command: string,
    private readonly log: Logger,
    private readonly timeoutMs = 10_000,
  ) {
    this.description = `command: ${command}`;
  }

  reload(): Promise<void> {
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
