import { execFile, spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, readdirSync } from 'node:fs';

/**
 * Network-namespace plumbing for the cluster harness: one namespace per host, a bridge in a
 * namespace of its own, one veth pair per host (host end `eth0`, bridge end `p<index>`).
 * Nothing is created in the root namespace: no interface, no address, no route, so runs
 * never touch the machine's own networking and every process is started with `ip netns exec`.
 */

export interface RunResult {
  stdout: string;
  stderr: string;
  /** Exit status; null when killed by a signal or the timeout. */
  code: number | null;
}

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
  env?: NodeJS.ProcessEnv;
}

/** Runs a command to completion and captures its output; never throws for a non-zero exit. */
export function run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      argv[0]!,
      argv.slice(1),
      { timeout: opts.timeoutMs ?? 20_000, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, env: opts.env },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0;
        resolve({ stdout: String(stdout), stderr: String(stderr) || (err && code === null ? err.message : ''), code });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** Like run(), but throws with the command's stderr on a non-zero exit. */
export async function runOk(argv: string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(argv, opts);
  if (r.code !== 0) {
    throw new Error(`${argv.join(' ')} failed (exit ${r.code ?? 'signal/timeout'}): ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r.stdout;
}

export function nsArgv(ns: string, argv: string[]): string[] {
  return ['ip', 'netns', 'exec', ns, ...argv];
}

export function netnsRun(ns: string, argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(nsArgv(ns, argv), opts);
}

/** Runs a command inside a namespace and returns its stdout; throws on a non-zero exit. */
export function netnsExec(ns: string, argv: string[], opts: RunOptions = {}): Promise<string> {
  return runOk(nsArgv(ns, argv), opts);
}

export function listNamespaces(): string[] {
  try {
    return readdirSync('/run/netns');
  } catch {
    return [];
  }
}

export async function createNamespace(ns: string): Promise<void> {
  await runOk(['ip', 'netns', 'add', ns]);
  await runOk(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
}

export const BRIDGE = 'br0';

export async function createBridge(bridgeNs: string): Promise<void> {
  await createNamespace(bridgeNs);
  await runOk(['ip', '-n', bridgeNs, 'link', 'add', BRIDGE, 'type', 'bridge']);
  await runOk(['ip', '-n', bridgeNs, 'link', 'set', BRIDGE, 'up']);
}

export function bridgePort(index: number): string {
  return `p${index}`;
}

/**
 * Creates host namespace `ns` and plugs it into the bridge. The veth pair is created with
 * both ends already inside their namespaces, so no interface name is ever taken in the root
 * namespace (parallel runs cannot collide there).
 */
export async function addHost(bridgeNs: string, ns: string, index: number, cidr: string): Promise<void> {
  await createNamespace(ns);
  const port = bridgePort(index);
  await runOk(['ip', 'link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', port, 'netns', bridgeNs]);
  await runOk(['ip', '-n', bridgeNs, 'link', 'set', port, 'master', BRIDGE]);
  await runOk(['ip', '-n', bridgeNs, 'link', 'set', port, 'up']);
  await runOk(['ip', '-n', ns, 'addr', 'add', cidr, 'dev', 'eth0']);
  await runOk(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
}

/** Full partition of one host: its bridge port goes down (instant, both directions). */
export async function setBridgePort(bridgeNs: string, index: number, up: boolean): Promise<void> {
  await runOk(['ip', '-n', bridgeNs, 'link', 'set', bridgePort(index), up ? 'up' : 'down']);
}

/** The iptables variant of a partition: the host drops everything on eth0 (silent, no RST). */
export async function setDropAll(ns: string, drop: boolean): Promise<void> {
  const op = drop ? '-I' : '-D';
  await netnsExec(ns, ['iptables', '-w', op, 'INPUT', '-i', 'eth0', '-j', 'DROP']);
  await netnsExec(ns, ['iptables', '-w', op, 'OUTPUT', '-o', 'eth0', '-j', 'DROP']);
}

/** Processes whose network namespace is `ns` (any process, also ones started by others in it). */
export async function namespacePids(ns: string): Promise<number[]> {
  const r = await run(['ip', 'netns', 'pids', ns]);
  if (r.code !== 0) return [];
  return r.stdout
    .split(/\s+/)
    .filter((s) => /^\d+$/.test(s))
    .map(Number);
}

/**
 * kill -9 every process in the namespace, wait until they are gone, then delete it. A
 * namespace with a live process in it would survive `ip netns del` anonymously.
 */
export async function deleteNamespace(ns: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = (await namespacePids(ns)).filter((pid) => processAlive(pid));
    if (pids.length === 0) break;
    for (const pid of pids) signalPid(pid, 'SIGKILL');
    if (Date.now() > deadline) throw new Error(`processes ${pids.join(',')} in namespace ${ns} did not die`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await run(['ip', 'netns', 'del', ns]);
}

/** /proc/<pid>/stat: state (field 3) and start time in clock ticks (field 22). */
export function procStat(pid: number): { state: string; startTime: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0]!, startTime: rest[19]! };
  } catch {
    return undefined;
  }
}

/** Alive and not a zombie (PID 1 here does not always reap orphans). */
export function processAlive(pid: number, startTime?: string): boolean {
  const st = procStat(pid);
  if (!st || st.state === 'Z' || st.state === 'X') return false;
  return startTime === undefined || st.startTime === startTime;
}

export function signalPid(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** A process started in a namespace, identified by pid + start time so a reused pid is never hit. */
export interface NsProcessRecord {
  pid: number;
  startTime: string;
  argv: string[];
  logFile: string;
}

/**
 * Starts `argv` inside `ns` as its own process group, output appended to `logFile`. `ip netns
 * exec` and setpriv both exec, so the pid is the real program's. With `detached` the process
 * outlives the caller (CLI and demo); otherwise it still runs in its own group but is reaped
 * by this process.
 */
export function spawnInNamespace(
  ns: string,
  argv: string[],
  logFile: string,
  opts: { env?: NodeJS.ProcessEnv; extraFds?: number[] } = {},
): NsProcessRecord {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn('ip', nsArgv(ns, argv).slice(1), {
      stdio: ['ignore', fd, fd, ...(opts.extraFds ?? [])],
      detached: true,
      env: opts.env ?? process.env,
    });
    child.on('error', () => undefined);
    child.unref();
    if (child.pid === undefined) throw new Error(`could not start ${argv.join(' ')}`);
    // The start time is read while the pid is certainly ours (we have not reaped it yet).
    const st = procStat(child.pid);
    return { pid: child.pid, startTime: st?.startTime ?? '', argv, logFile };
  } finally {
    closeSync(fd);
  }
}

/** Sends `signal`, escalates to SIGKILL after graceMs, resolves once the process is gone. */
export async function stopProcess(p: NsProcessRecord, signal: NodeJS.Signals = 'SIGTERM', graceMs = 4000): Promise<void> {
  if (!processAlive(p.pid, p.startTime)) return;
  signalPid(p.pid, signal);
  const deadline = Date.now() + graceMs;
  let escalated = signal === 'SIGKILL';
  while (processAlive(p.pid, p.startTime)) {
    if (!escalated && Date.now() > deadline) {
      signalPid(p.pid, 'SIGKILL');
      escalated = true;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function tailFile(path: string, lines = 30): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
