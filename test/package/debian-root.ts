import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A throw-away Debian root for installing the packages the way an operator would, without a
 * machine. Cached per day under cacheDir/<suite>-<yyyymmdd>/:
 *   root.tar.gz   debootstrap's result with that day's package lists
 *   base/         the tarball unpacked
 *   deps-<hash>/  an overlay layer holding the packages' dependencies, keyed by their Depends
 *   archives/     every .deb apt downloaded (bind-mounted as the root's apt archive)
 * A run mounts a fresh overlay over those layers, so nothing is copied and the cache never
 * changes. Services never start inside (policy-rc.d refuses; PID 1 is not systemd there).
 */

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** Runs a command to completion, keeping its output; never rejects on a non-zero exit. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 15 * 60_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Like run(), but a non-zero exit is an error carrying the command's output. */
export async function mustRun(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
  }
  return r;
}

export interface DebianRootOptions {
  suite: string;
  mirror: string;
  /** Packages every real server has that minbase lacks. */
  include: string[];
  cacheDir: string;
  /** Dependencies to preinstall as a cached layer (apt-get satisfy syntax); none: no layer. */
  depends?: string;
  log: (message: string) => void;
}

const APT_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C.UTF-8' };

/** Mount points in stack order, so that a failure half-way still unmounts what was mounted. */
class Mounts {
  private readonly points: string[] = [];

  async overlay(lower: string[], upper: string, work: string, target: string): Promise<void> {
    await mustRun('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower.join(':')},upperdir=${upper},workdir=${work}`, target]);
    this.points.push(target);
  }

  async bind(from: string, target: string): Promise<void> {
    await mustRun('mount', ['--bind', from, target]);
    this.points.push(target);
  }

  async proc(target: string): Promise<void> {
    await mustRun('mount', ['-t', 'proc', 'proc', target]);
    this.points.push(target);
  }

  async unmountAll(): Promise<void> {
    while (this.points.length > 0) {
      const p = this.points.pop()!;
      const r = await run('umount', [p]);
      if (r.code !== 0) await mustRun('umount', ['-l', p]);
    }
  }
}

export class DebianRoot {
  private constructor(
    readonly path: string,
    private readonly scratch: string,
    private readonly mounts: Mounts,
  ) {}

  static async create(opts: DebianRootOptions): Promise<DebianRoot> {
    const day = new Date().toISOString().slice(0, 10).replaceAll('-', '');
    const dayDir = join(opts.cacheDir, `${opts.suite}-${day}`);
    const base = join(dayDir, 'base');
    const archives = join(dayDir, 'archives');
    if (!existsSync(join(dayDir, 'root.tar.gz'))) await DebianRoot.bootstrap(opts, dayDir);
    if (!existsSync(base)) {
      opts.log(`unpacking ${dayDir}/root.tar.gz`);
      await mkdir(`${base}.tmp`, { recursive: true });
      await mustRun('tar', ['-xzf', join(dayDir, 'root.tar.gz'), '-C', `${base}.tmp`, '--numeric-owner']);
      await rename(`${base}.tmp`, base);
    }
    await mkdir(archives, { recursive: true });

    const layers = [base];
    if (opts.depends) {
      const hash = createHash('sha256').update(opts.depends).digest('hex').slice(0, 12);
      const deps = join(dayDir, `deps-${hash}`);
      if (!existsSync(deps)) {
        opts.log(`installing the dependencies into a cached layer: ${opts.depends}`);
        await DebianRoot.withRoot(layers, `${deps}.tmp`, archives, async (root) => {
          await root.mustExec(['apt-get', 'satisfy', '-y', '-q', '--no-install-recommends', opts.depends!]);
        });
        await rename(`${deps}.tmp`, deps);
      } else {
        opts.log(`using cached dependency layer ${deps}`);
      }
      layers.unshift(deps);
    }
    return DebianRoot.mount(layers, undefined, archives);
  }

  /** Runs fn in a root whose changes land in `upper`, then unmounts it. */
  private static async withRoot(lower: string[], upper: string, archives: string, fn: (root: DebianRoot) => Promise<void>): Promise<void> {
    await rm(upper, { recursive: true, force: true });
    await mkdir(upper, { recursive: true });
    const root = await DebianRoot.mount(lower, upper, archives);
    try {
      await fn(root);
      await root.mustExec(['rm', '-f', '/usr/sbin/policy-rc.d']);
    } finally {
      await root.destroy();
      await rm(`${upper}.work`, { recursive: true, force: true });
    }
  }

  private static async mount(lower: string[], upperDir: string | undefined, archives: string): Promise<DebianRoot> {
    const scratch = await mkdtemp('/var/tmp/autoradio-debroot-');
    const upper = upperDir ?? join(scratch, 'upper');
    // overlayfs wants its work dir on the upper dir's filesystem.
    const work = upperDir ? `${upperDir}.work` : join(scratch, 'work');
    const path = join(scratch, 'root');
    await rm(work, { recursive: true, force: true });
    await Promise.all([mkdir(upper, { recursive: true }), mkdir(work), mkdir(path)]);
    const mounts = new Mounts();
    const root = new DebianRoot(path, scratch, mounts);
    try {
      await mounts.overlay(lower, upper, work, path);
      await mounts.bind(archives, join(path, 'var/cache/apt/archives'));
      await mounts.proc(join(path, 'proc'));
      const policy = join(path, 'usr/sbin/policy-rc.d');
      await writeFile(policy, '#!/bin/sh\n# no service starts inside the test root\nexit 101\n');
      await chmod(policy, 0o755);
      await rm(join(path, 'etc/resolv.conf'), { force: true });
      await copyFile('/etc/resolv.conf', join(path, 'etc/resolv.conf'));
    } catch (err) {
      await root.destroy();
      throw err;
    }
    return root;
  }

  private static async bootstrap(opts: DebianRootOptions, dayDir: string): Promise<void> {
    // Older days are never used again.
    await mkdir(opts.cacheDir, { recursive: true });
    for (const entry of await readdir(opts.cacheDir)) {
      if (entry.startsWith(`${opts.suite}-`)) await rm(join(opts.cacheDir, entry), { recursive: true, force: true });
    }
    await mkdir(dayDir, { recursive: true });
    const work = await mkdtemp('/var/tmp/autoradio-debootstrap-');
    try {
      opts.log(`debootstrap ${opts.suite} from ${opts.mirror}`);
      const target = join(work, 'root');
      await mustRun('debootstrap', ['--variant=minbase', `--include=${opts.include.join(',')}`, opts.suite, target, opts.mirror]);
      // The day's package lists go into the tarball, so a run needs no `apt-get update`.
      await mustRun('chroot', [target, 'apt-get', 'update', '-q'], { env: APT_ENV });
      await mustRun('chroot', [target, 'apt-get', 'clean']);
      const tarball = join(dayDir, 'root.tar.gz');
      await mustRun('tar', ['-czf', `${tarball}.tmp`, '--numeric-owner', '-C', target, '.']);
      await rename(`${tarball}.tmp`, tarball);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  /** Runs a command inside the root as root (or as user:group with `user`). */
  exec(args: string[], opts: RunOptions & { user?: string; groups?: string } = {}): Promise<RunResult> {
    const chrootArgs: string[] = [];
    if (opts.user) chrootArgs.push(`--userspec=${opts.user}`);
    if (opts.groups) chrootArgs.push(`--groups=${opts.groups}`);
    return run('chroot', [...chrootArgs, this.path, ...args], {
      ...opts,
      env: { ...APT_ENV, HOME: '/root', ...opts.env },
    });
  }

  async mustExec(args: string[], opts: RunOptions & { user?: string; groups?: string } = {}): Promise<RunResult> {
    const r = await this.exec(args, opts);
    if (r.code !== 0) {
      throw new Error(`in root: ${args.join(' ')} exited ${r.code}\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
    }
    return r;
  }

  async destroy(): Promise<void> {
    await this.mounts.unmountAll();
    // Never delete through a mount that is still there.
    const mounts = await run('findmnt', ['-rn', '-o', 'TARGET']);
    if (mounts.stdout.split('\n').some((m) => m.startsWith(this.scratch + '/'))) {
      throw new Error(`${this.scratch} still has mounts; not deleting it`);
    }
    await rm(this.scratch, { recursive: true, force: true });
  }
}
