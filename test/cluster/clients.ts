import { spawn, type ChildProcess } from 'node:child_process';
import { sineSourceArgv, type Cluster } from '../support/cluster.js';
import { nsArgv } from '../support/netns.js';

/**
 * Sources and listeners for cluster tests. They run in the cluster's client namespace (so
 * they outlive any node) as children of the test process, which watches their output.
 */

/**
 * A broadcaster that reconnects: ffmpeg streams a sine tone to `url`, and is restarted
 * `retryMs` after it exits (real source clients such as liquidsoap retry the same way).
 */
export class SourceLoop {
  starts = 0;
  private child: ChildProcess | undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  lastOutput: string[] = [];

  constructor(
    private readonly cluster: Cluster,
    private readonly url: string,
    private readonly creds: { username: string; password: string },
    private readonly retryMs = 500,
  ) {}

  start(): this {
    this.launch();
    return this;
  }

  private launch(): void {
    if (this.stopped) return;
    this.starts += 1;
    const argv = nsArgv(this.cluster.clientNs, sineSourceArgv(this.url, this.creds.username, this.creds.password));
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    child.stderr!.on('data', (b: Buffer) => {
      this.lastOutput.push(...b.toString().split('\n').filter(Boolean));
      this.lastOutput.splice(0, Math.max(0, this.lastOutput.length - 20));
    });
    child.on('exit', () => {
      if (!this.stopped) this.timer = setTimeout(() => this.launch(), this.retryMs);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await killAndWait(this.child);
  }
}

/**
 * A listener (curl, following redirects) that records when audio bytes arrive. `gaps` are
 * pauses longer than `gapThresholdMs`; every exit of curl counts as a disconnect, and the
 * listener reconnects after `reconnectMs` (like a player whose user presses play again).
 */
export class ListenerMonitor {
  bytes = 0;
  disconnects = 0;
  lastDataAt = 0;
  firstDataAt = 0;
  readonly gaps: { at: number; ms: number }[] = [];
  private child: ChildProcess | undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly cluster: Cluster,
    readonly url: string,
    private readonly opts: { gapThresholdMs?: number; reconnectMs?: number } = {},
  ) {}

  start(): this {
    this.launch();
    return this;
  }

  private launch(): void {
    if (this.stopped) return;
    const argv = nsArgv(this.cluster.clientNs, ['curl', '-sSN', '-L', '--max-time', '600', this.url]);
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
    this.child = child;
    child.stdout!.on('data', (b: Buffer) => {
      const now = Date.now();
      if (this.lastDataAt && now - this.lastDataAt > (this.opts.gapThresholdMs ?? 1000)) {
        this.gaps.push({ at: this.lastDataAt, ms: now - this.lastDataAt });
      }
      if (!this.firstDataAt) this.firstDataAt = now;
      this.lastDataAt = now;
      this.bytes += b.length;
    });
    child.on('exit', () => {
      if (this.stopped) return;
      this.disconnects += 1;
      this.timer = setTimeout(() => this.launch(), this.opts.reconnectMs ?? 200);
    });
  }

  /** Receiving now: audio arrived within the last `withinMs`. */
  receiving(withinMs = 1000): boolean {
    return this.lastDataAt > 0 && Date.now() - this.lastDataAt < withinMs;
  }

  /** The longest pause since `since` (including a pause still going on). */
  maxGapSince(since: number): number {
    const closed = this.gaps.filter((g) => g.at + g.ms >= since).map((g) => g.ms);
    const open = this.lastDataAt ? Date.now() - this.lastDataAt : 0;
    return Math.max(0, open, ...closed);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await killAndWait(this.child);
  }
}

/**
 * Whether a node's Icecast takes a source for `mount` with these credentials: anything but
 * 401 (200 when free, 403 "in use" when a source is already there). Run from inside the node's
 * own namespace, so it also works while the node is cut off.
 */
export async function icecastAcceptsSource(
  cluster: Cluster,
  node: number | string,
  mount: string,
  creds: { username: string; password: string },
): Promise<boolean> {
  const n = cluster.node(node);
  const r = await cluster.execResult(
    n,
    [
      'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '2',
      '-X', 'PUT', '-u', `${creds.username}:${creds.password}`,
      '-H', 'Content-Type: audio/mpeg', '-H', 'Expect:', '--data-binary', '',
      `http://${n.ip}:8000${mount}`,
    ],
    { timeoutMs: 4000 },
  );
  const code = Number(r.stdout.trim()) || 0;
  return code !== 0 && code !== 401;
}

/** The nodes whose Icecast takes the mount's real password now, asked on every node at once. */
export async function sourceAcceptors(cluster: Cluster, mount: string, creds: { username: string; password: string }): Promise<string[]> {
  const r = await Promise.all(cluster.nodes.map((n) => icecastAcceptsSource(cluster, n.name, mount, creds)));
  return cluster.nodes.filter((_, i) => r[i]).map((n) => n.name);
}

async function killAndWait(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}
