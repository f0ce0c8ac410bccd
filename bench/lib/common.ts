import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Shared plumbing of the benchmarks: flags, child tracking, /proc readings, result output. */

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export function builtMain(program: 'radiod' | 'redirectord' | 'radioctl'): string {
  return join(PROJECT_ROOT, 'dist', program, 'main.js');
}

export interface BenchArgs {
  quick: boolean;
  /** `--name value` flags, raw. */
  flags: Map<string, string>;
  has(flag: string): boolean;
}

export function benchArgs(argv = process.argv.slice(2)): BenchArgs {
  const flags = new Map<string, string>();
  const bare = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) continue;
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('--')) {
      flags.set(a, next);
      i++;
    } else bare.add(a);
  }
  return { quick: bare.has('--quick'), flags, has: (f) => bare.has(f) || flags.has(f) };
}

export function numFlag(args: BenchArgs, name: string, fallback: number): number {
  const v = args.flags.get(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number, got "${v}"`);
  return n;
}

// Every process a benchmark starts is killed on exit, error or Ctrl-C: a benchmark never
// leaves an nginx or a redirectord holding a port behind.
const children = new Set<ChildProcess>();
const cleanups: (() => Promise<void> | void)[] = [];

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

export async function cleanupAll(): Promise<void> {
  while (cleanups.length > 0) {
    const fn = cleanups.pop()!;
    try {
      await fn();
    } catch {
      // best effort: the remaining cleanups still run
    }
  }
  for (const c of children) c.kill('SIGKILL');
}

process.once('SIGINT', () => {
  void cleanupAll().finally(() => process.exit(130));
});
process.once('SIGTERM', () => {
  void cleanupAll().finally(() => process.exit(143));
});

export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_') && !k.startsWith('ETCDCTL_')));
  return { ...env, ...extra };
}

/** Spawns a tracked child; the last lines of its output are kept for error messages. */
export function startChild(cmd: string, args: string[], opts: SpawnOptions = {}): { child: ChildProcess; output: string[] } {
  const child = track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv(), ...opts }));
  const output: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line) output.push(line);
    if (output.length > 100) output.splice(0, output.length - 100);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { child, output };
}

export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 4000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await once(child, 'exit');
  clearTimeout(timer);
}

/** Runs a command to completion and returns its stdout (throws on a non-zero exit). */
export async function runToEnd(cmd: string, args: string[], opts: SpawnOptions = {}): Promise<string> {
  const { child, output } = startChild(cmd, args, opts);
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${cmd} exited ${code}: ${output.slice(-10).join('\n')}`);
  return out;
}

const CLK_TCK = 100;

/** User + system CPU seconds a process has used so far (children not included). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name may contain spaces and parentheses: fields start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

/** The machine as it was when the benchmark ran: the numbers mean nothing without it. */
export function machine(): Record<string, unknown> {
  const mem = /MemTotal:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
  const model = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
  return {
    nproc: Number(readFileSync('/proc/cpuinfo', 'utf8').match(/^processor\s*:/gm)?.length ?? 0),
    cpu: model?.[1]?.trim(),
    memGiB: mem ? Math.round((Number(mem[1]) / 1024 / 1024) * 10) / 10 : undefined,
    loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
    node: process.version,
  };
}

export function round(v: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Nearest-rank percentile. */
export function percentile(values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1]!;
}

/** One JSON line (for machines), then the human summary. */
export function report(result: Record<string, unknown>, summary: string[]): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.stdout.write(`${summary.join('\n')}\n`);
}

/** Runs a benchmark's main with cleanup on every path and a one-line failure message. */
export function runBench(name: string, main: () => Promise<void>): void {
  main()
    .then(() => cleanupAll())
    .then(() => process.exit(0))
    .catch(async (err: unknown) => {
      await cleanupAll();
      process.stderr.write(`${name} bench failed: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
