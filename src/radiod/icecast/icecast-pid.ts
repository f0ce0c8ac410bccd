import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';

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
 * Where the local Icecast's pid comes from: the pidfile the config names (radiod renders it, so
 * it knows), else `pidof icecast2` (Debian's service runs exactly one). Several processes of
 * that name are an error, never a guess: radiod signals the one it finds.
 */
export class IcecastPid {
  readonly description: string;

  constructor(private readonly opts: { pidfile?: string; processName?: string } = {}) {
    this.description = opts.pidfile ? `the pid in ${opts.pidfile}` : this.name;
  }

  private get name(): string {
    return this.opts.processName ?? 'icecast2';
  }

  async find(): Promise<number> {
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

  /**
   * Whether `pid` runs Icecast now. A pidfile outlives an Icecast that was killed, and its pid
   * can be reused, even by a process of the same user (radiod's own liquidsoap).
   */
  async isIcecast(pid: number): Promise<boolean> {
    const comm = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim();
    return comm === this.name || comm === 'icecast';
  }

  /**
   * How long `pid` has run, in ms: its start time (field 22 of /proc/PID/stat, in clock ticks
   * since boot) against /proc/uptime. Linux's USER_HZ is 100 on every architecture Debian ships.
   */
  async ageMs(pid: number): Promise<number> {
    const [stat, uptime] = await Promise.all([readFile(`/proc/${pid}/stat`, 'utf8'), readFile('/proc/uptime', 'utf8')]);
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const startTicks = Number(fields[19]);
    const upSeconds = Number(uptime.split(' ')[0]);
    if (!Number.isFinite(startTicks) || !Number.isFinite(upSeconds)) throw new Error(`cannot read the start time of pid ${pid}`);
    return Math.max(0, upSeconds * 1000 - startTicks * 10);
  }
}
