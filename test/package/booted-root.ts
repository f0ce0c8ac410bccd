import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { startProcess, type Managed } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { run, type DebianRoot, type RunResult } from './debian-root.js';

/**
 * A Debian root booted with systemd as PID 1 in a container (systemd-nspawn), to run the units
 * as an operator's machine does. --private-network: the container has its own loopback only,
 * so ports 53 and 80 never touch the host's. --register=no --keep-unit: this machine's init is
 * not systemd (no machined to register with, no scope units to create). Commands run inside
 * through nsenter into the container's namespaces.
 */
export class BootedRoot {
  private constructor(
    private readonly nspawn: ChildProcess,
    readonly initPid: number,
    private readonly console: { text: string },
  ) {}

  static async boot(root: DebianRoot, opts: { timeoutMs: number }): Promise<BootedRoot> {
    await root.prepareBoot();
    const nspawn = spawn(
      'systemd-nspawn',
      ['-D', root.path, '-b', '--register=no', '--keep-unit', '--private-network', '--machine=autoradio-test', '--quiet'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SYSTEMD_NSPAWN_TMPFS_TMP: '0' } },
    );
    const console = { text: '' };
    const keep = (c: Buffer) => (console.text = (console.text + c.toString()).slice(-20_000));
    nspawn.stdout!.on('data', keep);
    nspawn.stderr!.on('data', keep);
    const initPid = await waitFor(
      'systemd to start inside the container',
      async () => {
        if (nspawn.exitCode !== null) throw new Error(`systemd-nspawn exited ${nspawn.exitCode}: ${console.text.slice(-2000)}`);
        const children = await readFile(`/proc/${nspawn.pid}/task/${nspawn.pid}/children`, 'utf8').catch(() => '');
        const pid = Number(children.trim().split(/\s+/)[0]);
        return pid > 0 ? pid : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    const booted = new BootedRoot(nspawn, initPid, console);
    await waitFor(
      'the container to finish booting',
      async () => {
        if (nspawn.exitCode !== null) throw new Error(`systemd-nspawn exited ${nspawn.exitCode}`);
        const state = (await booted.exec(['systemctl', 'is-system-running'])).stdout.trim();
        return state === 'running' || state === 'degraded';
      },
      { timeoutMs: opts.timeoutMs, intervalMs: 500 },
    ).catch(async (err: Error) => {
      // What the boot still waits for, then the container goes: nothing else would stop it.
      const jobs = await booted.exec(['systemctl', '--no-pager', 'list-jobs']);
      await booted.shutdown();
      throw new Error(`${err.message}\n${jobs.stdout}\n${console.text.slice(-3000)}`);
    });
    return booted;
  }

  exec(args: string[], timeoutMs = 120_000): Promise<RunResult> {
    return run('nsenter', ['-t', String(this.initPid), '-a', ...args], {
      timeoutMs,
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C.UTF-8', DEBIAN_FRONTEND: 'noninteractive', HOME: '/root' },
    });
  }

  /**
   * A program of this machine (ffmpeg, curl, node) run in the container's network namespace
   * only: it reaches the container's loopback (port 80, Icecast, etcd) and keeps this machine's
   * files, so nothing needs installing inside.
   */
  netRun(cmd: string, args: string[], timeoutMs = 60_000): Promise<RunResult> {
    return run('nsenter', ['-t', String(this.initPid), '-n', cmd, ...args], { timeoutMs });
  }

  /** Like netRun(), for a long-running program. */
  netStart(cmd: string, args: string[]): Managed {
    return startProcess('nsenter', ['-t', String(this.initPid), '-n', cmd, ...args]);
  }

  async mustExec(args: string[], timeoutMs?: number): Promise<RunResult> {
    const r = await this.exec(args, timeoutMs);
    if (r.code !== 0) throw new Error(`in container: ${args.join(' ')} exited ${r.code}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
    return r;
  }

  /** The unit's main pid (0 when it has none) and its state. */
  async unit(name: string): Promise<{ pid: number; active: string }> {
    const r = await this.exec(['systemctl', 'show', '-p', 'MainPID', '-p', 'ActiveState', name]);
    const pid = Number(/MainPID=(\d+)/.exec(r.stdout)?.[1] ?? 0);
    const active = /ActiveState=(\S+)/.exec(r.stdout)?.[1] ?? 'unknown';
    return { pid, active };
  }

  /** Last lines of the container's console, for failure messages. */
  consoleTail(): string {
    return this.console.text.slice(-3000);
  }

  /** Powers the container off (SIGTERM to nspawn is a clean shutdown), SIGKILL past the deadline. */
  async shutdown(): Promise<void> {
    if (this.nspawn.exitCode !== null || this.nspawn.signalCode !== null) return;
    const exited = new Promise((r) => this.nspawn.once('exit', r));
    this.nspawn.kill('SIGTERM');
    const timer = setTimeout(() => this.nspawn.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
}
