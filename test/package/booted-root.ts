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
    // Past half its time a command is stuck: what the container waits on is taken then, while it
    // still waits (after the kill it is gone).
    const stuckAfterMs = (timeoutMs ?? 120_000) / 2;
    let stuck: Promise<string> | undefined;
    const watch = setTimeout(() => (stuck = this.waitingOn()), stuckAfterMs);
    const r = await this.exec(args, timeoutMs).finally(() => clearTimeout(watch));
    if (r.code !== 0) {
      const report = stuck ? `\nstuck after ${stuckAfterMs} ms:\n${await stuck}` : '';
      throw new Error(`in container: ${args.join(' ')} exited ${r.code}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}${report}`);
    }
    return r;
  }

  /** systemd's queued jobs, every process of the container with its parent, the journal's end. */
  async waitingOn(): Promise<string> {
    const jobs = await this.exec(['systemctl', '--no-pager', 'list-jobs'], 10_000);
    // A minimal Debian 13 has no ps (procps).
    const processes = await this.exec(['sh', '-c',
      'for p in /proc/[0-9]*; do s=$(cat $p/stat 2>/dev/null) || continue; c=$(tr "\\0" " " < $p/cmdline 2>/dev/null | cut -c1-160); ' +
      'set -- ${s#*) }; echo "${p#/proc/} ppid=$2 state=$1 $c"; done'], 10_000);
    // Where each of Icecast's threads sleeps: a stalled Icecast still runs.
    const icecast = await this.exec(['sh', '-c',
      'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = icecast2 ] || continue; ' +
      'for t in $p/task/*; do echo "${t#/proc/} $(cut -d" " -f3 $t/stat) $(cat $t/wchan 2>/dev/null)"; done; done'], 10_000);
    const journal = await this.exec(['journalctl', '--no-pager', '-n', '80', '-o', 'short-monotonic'], 10_000);
    return `jobs:\n${jobs.stdout}\nprocesses:\n${processes.stdout}\nicecast threads:\n${icecast.stdout}\njournal:\n${journal.stdout}`;
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
