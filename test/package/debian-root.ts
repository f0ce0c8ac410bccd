import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, readdir, readlink, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from '../support/wait.js';

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
    // A command that exited while a process it started still holds its output open (a daemon
    // that did not detach its stdio) is not done: say which of the two a timeout cut.
    let exited: number | null | undefined;
    child.once('exit', (code) => (exited = code));
    const timer = setTimeout(() => {
      stderr += exited === undefined
        ? `\n[killed after ${opts.timeoutMs ?? 15 * 60_000} ms: still running]`
        : `\n[exited ${exited}, but its output was still held open by a process it started]`;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 15 * 60_000);
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

  /** Unmounts one mount point now (systemd-nspawn mounts its own /proc). */
  async release(target: string): Promise<void> {
    const i = this.points.lastIndexOf(target);
    if (i < 0) return;
    await mustRun('umount', [target]);
    this.points.splice(i, 1);
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
    // Two test files preparing the same day's layers at once would overwrite each other's work.
    const { layers, archives } = await withCacheLock(opts.cacheDir, 'root', () => DebianRoot.prepareLayers(opts));
    return DebianRoot.mount(layers, undefined, archives);
  }

  private static async prepareLayers(opts: DebianRootOptions): Promise<{ layers: string[]; archives: string }> {
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
    return { layers, archives };
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

  /** Makes the root bootable with systemd-nspawn: its own /proc, services allowed to start. */
  async prepareBoot(): Promise<void> {
    await this.mounts.release(join(this.path, 'proc'));
    await rm(join(this.path, 'usr/sbin/policy-rc.d'), { force: true });
    // minbase has no /etc/hosts; etcd resolves "localhost" through it.
    await writeFile(join(this.path, 'etc/hosts'), '127.0.0.1 localhost\n::1 localhost ip6-localhost\n');
  }

  /** Processes whose root directory is this root (anything a test started inside it). */
  async processes(): Promise<number[]> {
    const pids: number[] = [];
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const r = await readlink(`/proc/${entry}/root`).catch(() => '');
      if (r === this.path || r.startsWith(`${this.path}/`)) pids.push(Number(entry));
    }
    return pids;
  }

  async destroy(): Promise<void> {
    // A process left inside (a test failed half-way) would keep the mounts busy. Only this
    // run's processes can live in this freshly made root.
    const left = await this.processes();
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (left.length > 0) {
      await waitFor('processes left in the Debian root to exit', async () => (await this.processes()).length === 0, {
        timeoutMs: 10_000,
        intervalMs: 100,
      });
    }
    await this.mounts.unmountAll();
    // Never delete through a mount that is still there.
    const mounts = await run('findmnt', ['-rn', '-o', 'TARGET']);
    if (mounts.stdout.split('\n').some((m) => m.startsWith(this.scratch + '/'))) {
      throw new Error(`${this.scratch} still has mounts; not deleting it`);
    }
    await rm(this.scratch, { recursive: true, force: true });
  }
}

/** Cache shared by the package tests: Debian roots and the packages of the latest sources. */
export const PACKAGE_CACHE_DIR = '/var/cache/autoradio-test';
export const PACKAGE_SUITE = 'trixie';

/** The Debian mirror this machine uses (deb822 or one-line sources), security archive aside. */
export async function debianMirror(): Promise<string> {
  if (process.env.AUTORADIO_DEBIAN_MIRROR) return process.env.AUTORADIO_DEBIAN_MIRROR;
  const files = ['/etc/apt/sources.list'];
  for (const f of await readdir('/etc/apt/sources.list.d').catch(() => [] as string[])) {
    files.push(join('/etc/apt/sources.list.d', f));
  }
  for (const f of files) {
    const text = await readFile(f, 'utf8').catch(() => '');
    for (const m of text.matchAll(/^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)/gm)) {
      const url = m[1]!.replace(/\/$/, '');
      if (/\/debian$/.test(url)) return url;
    }
  }
  return 'http://deb.debian.org/debian';
}

/** The packages' dependencies on anything but themselves, for the cached dependency layer. */
export async function dependencies(debDir: string): Promise<string> {
  const all = new Set<string>();
  for (const f of (await readdir(debDir)).filter((x) => x.endsWith('.deb'))) {
    const r = await mustRun('dpkg-deb', ['-f', join(debDir, f), 'Depends']);
    for (const d of r.stdout.split(',').map((x) => x.trim())) if (d && !d.startsWith('autoradio-')) all.add(d);
  }
  return [...all].sort().join(', ');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs fn while holding `name`'s lock in cacheDir, so that test processes running side by side
 * never prepare the same cache entry twice. A lock whose owner died is taken over.
 */
export async function withCacheLock<T>(cacheDir: string, name: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(cacheDir, { recursive: true });
  const lock = join(cacheDir, `${name}.lock`);
  await waitFor(
    `the cache lock ${lock}`,
    async () => {
      try {
        await mkdir(lock);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const owner = Number(await readFile(join(lock, 'pid'), 'utf8').catch(() => '0'));
        const age = Date.now() - ((await stat(lock).catch(() => undefined))?.mtimeMs ?? Date.now());
        if (owner > 0 ? !alive(owner) : age > 60_000) await rm(lock, { recursive: true, force: true });
        return false;
      }
      await writeFile(join(lock, 'pid'), String(process.pid));
      return true;
    },
    { timeoutMs: 40 * 60_000, intervalMs: 500 },
  );
  try {
    return await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/** What scripts/deb.sh copies into its build tree (its `parts`), plus the script itself. */
const DEB_INPUTS = ['package.json', 'package-lock.json', 'tsconfig.json', 'src', 'bin', 'debian', 'README.md', 'LICENSE', 'COPYING', 'scripts/deb.sh'];

/** A digest of the files the packages are built from, or undefined outside a git work tree. */
async function sourceDigest(repo: string): Promise<string | undefined> {
  const r = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', ...DEB_INPUTS], { cwd: repo });
  if (r.code !== 0) return undefined;
  const hash = createHash('sha256');
  for (const f of r.stdout.split('\0').filter(Boolean).sort()) {
    const st = await stat(join(repo, f)).catch(() => undefined);
    if (!st?.isFile()) continue;
    hash.update(`${f}\0${st.mode & 0o111 ? 'x' : '-'}\0`);
    hash.update(await readFile(join(repo, f)));
    hash.update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * The directory holding the .debs (and lintian.txt) of the current sources: built with
 * scripts/deb.sh once per source state and kept in cacheDir, so that every package test of a
 * run (and later runs on unchanged sources) installs the same build. AUTORADIO_DEBS=<dir>
 * uses packages built elsewhere.
 */
export async function builtPackages(repo: string, opts: { cacheDir: string; log: (m: string) => void }): Promise<string> {
  if (process.env.AUTORADIO_DEBS) return process.env.AUTORADIO_DEBS;
  return withCacheLock(opts.cacheDir, 'debs', async () => {
    const before = await sourceDigest(repo);
    const cached = before && join(opts.cacheDir, `debs-${before}`);
    if (cached && existsSync(join(cached, 'lintian.txt'))) {
      opts.log(`using the packages already built from these sources: ${cached}`);
      return cached;
    }
    opts.log('building the packages (scripts/deb.sh)');
    await mustRun('bash', ['scripts/deb.sh'], { cwd: repo, timeoutMs: 15 * 60_000 });
    const out = join(repo, 'build/deb');
    // Sources edited during the build: the result matches no digest, so it is not kept.
    if (!cached || (await sourceDigest(repo)) !== before) return out;
    for (const entry of await readdir(opts.cacheDir)) {
      if (entry.startsWith('debs-')) await rm(join(opts.cacheDir, entry), { recursive: true, force: true });
    }
    await mkdir(`${cached}.tmp`, { recursive: true });
    for (const f of await readdir(out)) {
      if (/\.(deb|changes|buildinfo)$/.test(f) || f === 'lintian.txt') await copyFile(join(out, f), join(`${cached}.tmp`, f));
    }
    await rename(`${cached}.tmp`, cached);
    return cached;
  });
}

/** A fresh Debian root (cached layers, new overlay) ready to take the packages in debDir. */
export async function packageRoot(debDir: string, log: (m: string) => void): Promise<DebianRoot> {
  return DebianRoot.create({
    suite: PACKAGE_SUITE,
    mirror: await debianMirror(),
    include: ['ca-certificates', 'systemd'],
    cacheDir: PACKAGE_CACHE_DIR,
    depends: await dependencies(debDir),
    log,
  });
}

/** apt-get install of every .deb in debDir, as an operator would; fails on a non-zero exit. */
export async function installPackages(root: DebianRoot, debDir: string): Promise<RunResult> {
  await mkdir(join(root.path, 'tmp/debs'), { recursive: true });
  const debs = (await readdir(debDir)).filter((f) => f.endsWith('.deb'));
  for (const f of debs) await copyFile(join(debDir, f), join(root.path, 'tmp/debs', f));
  return root.mustExec(['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...debs.map((f) => `/tmp/debs/${f}`)]);
}

/** A systemd unit's `Key=value` directives, each key with all its values in order. */
export function unitDirectives(unit: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) map.set(m[1]!, [...(map.get(m[1]!) ?? []), m[2]!]);
  }
  return map;
}
