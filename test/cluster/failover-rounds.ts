import { readFileSync } from 'node:fs';
import type { Cluster, ClusterNode } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';
import type { ListenerMonitor, SourceLoop } from './clients.js';
import { startListener, startSource, waitServedEverywhere } from './setup.js';

/**
 * How the master is lost in a failover round:
 * - node-kill: kill -9 of everything on the master node (etcd member, Icecast, both daemons);
 * - partition: the master node's bridge port goes down (alive, cut off from everyone);
 * - radiod-kill: kill -9 of the master's radiod alone, restarted 1 s later as systemd does
 *   (Restart=always, RestartSec=1 in the Debian unit);
 * - icecast-crash: kill -9 of the master's Icecast alone, restarted 1 s later as the package's
 *   drop-in does;
 * - planned-stop: SIGTERM to the master's radiod (`systemctl stop radiod`), started again after.
 */
export type FaultKind = 'node-kill' | 'partition' | 'radiod-kill' | 'icecast-crash' | 'planned-stop';

export const FAULT_KINDS: readonly FaultKind[] = ['node-kill', 'partition', 'radiod-kill', 'icecast-crash', 'planned-stop'];

/** The MP3 the test source sends: 128 kbit/s. */
const STREAM_BYTES_PER_MS = 16;

export interface RoundResult {
  kind: FaultKind;
  /** Wall-clock time of the fault (epoch ms), to find the round in the daemons' logs. */
  faultAt: number;
  oldMaster: string;
  newMaster: string;
  /** Fault to another node's election key leading in etcd. */
  electedMs: number;
  /** Fault to audio flowing again at every listener. */
  audioBackMs: number;
  /** Longest silence per listener (one per surviving node). */
  silenceMs: number[];
  /** Audio the listeners never got, from the bytes they received against the stream's rate. */
  lostMs: number[];
  disconnects: number;
  sourceRestarts: number;
  /** Most nodes whose Icecast would take the mount's source at one sampled instant. */
  maxAccepting: number;
  samples: number;
}

/**
 * Whether a node's Icecast would take a source for `mount` with the real credentials right now,
 * asked exactly as Icecast asks: its URL authenticator (the stream_auth URL in its icecast.xml,
 * radiod's source authenticator) with the credentials. Nothing is connected, so sampling does not
 * disturb the stream. A dead radiod, or a node whose Icecast is down, takes nothing.
 */
export async function nodeTakesSource(c: Cluster, node: ClusterNode, mount: string, creds: { username: string; password: string }): Promise<boolean> {
  if (!c.isRunning(node, 'icecast')) return false;
  let xml: string;
  try {
    xml = readFileSync(node.icecastConfig, 'utf8');
  } catch {
    return false;
  }
  const section = xml.split('<mount type="normal">').find((s) => s.includes(`<mount-name>${mount}</mount-name>`));
  const url = section && /name="stream_auth" value="([^"]+)"/.exec(section)?.[1];
  if (!url) return section?.includes(`<password>${creds.password}</password>`) ?? false;
  const form = new URLSearchParams({ action: 'stream_auth', mount, ip: '127.0.0.1', server: 'x', port: '8000', user: creds.username, pass: creds.password });
  const r = await c
    .execResult(node, ['curl', '-s', '-D', '-', '-o', '/dev/null', '--max-time', '1', '--data', form.toString(), url])
    .catch(() => undefined);
  return r !== undefined && /^icecast-auth-user:\s*1/im.test(r.stdout);
}

/**
 * Samples every node's answer every `intervalMs` until stopped, and remembers the most nodes that
 * would have taken the source at one instant. One answer is one instant, and the nodes are asked
 * in parallel but not at the same instant, so a handover can show the old master's last yes and
 * the new one's first in one sample without any overlap. What proves an overlap: a node that
 * said yes in two consecutive samples said yes over the whole time between them (a node stops
 * being allowed only by an election, never for one sample), and the second sample started after
 * the first ended; so nodes that said yes in both were all allowed at once in between.
 */
export class AcceptanceSampler {
  maxAccepting = 0;
  samples = 0;
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(c: Cluster, mount: string, creds: { username: string; password: string }, intervalMs = 200) {
    this.done = (async () => {
      let previous = new Set<string>();
      while (!this.stopped) {
        const answers = await Promise.all(c.nodes.map(async (n) => ((await nodeTakesSource(c, n, mount, creds)) ? n.name : undefined)));
        const yes = new Set(answers.filter((a): a is string => a !== undefined));
        this.maxAccepting = Math.max(this.maxAccepting, [...yes].filter((n) => previous.has(n)).length);
        previous = yes;
        this.samples++;
        await new Promise((r) => setTimeout(r, intervalMs));
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

async function masterName(c: Cluster, via: readonly ClusterNode[]): Promise<string | undefined> {
  return (await c.master({ endpoints: via.map((n) => n.etcdUrl) }).catch(() => undefined))?.name;
}

async function liveNodes(c: Cluster): Promise<number> {
  const r = await c.etcdctl(['get', '--prefix', '/autoradio/v1/nodes/', '--keys-only'], { endpoints: c.nodes.map((n) => n.etcdUrl) });
  return r.stdout.split('\n').filter((l) => l.trim()).length;
}

/** Applies the fault; returns what puts the node back. */
async function inject(c: Cluster, kind: FaultKind, victim: ClusterNode): Promise<() => Promise<void>> {
  switch (kind) {
    case 'node-kill':
      await c.killNode(victim);
      return () => c.startNode(victim);
    case 'partition':
      await c.isolate(victim);
      return () => c.heal(victim);
    case 'radiod-kill':
    case 'icecast-crash': {
      const proc = kind === 'radiod-kill' ? 'radiod' : 'icecast';
      await c.kill(victim, proc, 'SIGKILL');
      // The supervisor's restart (systemd's RestartSec=1), while the round goes on.
      const restarted = new Promise((r) => setTimeout(r, 1000)).then(() => c.start(victim, proc));
      return () => restarted;
    }
    case 'planned-stop':
      await c.kill(victim, 'radiod', 'SIGTERM');
      return () => c.start(victim, 'radiod');
  }
}

/**
 * One master loss with a live source entering through a surviving node's front door and one
 * `/_stream` listener per surviving node; then the node is restored and the cluster settles.
 */
export async function failoverRound(
  c: Cluster,
  kind: FaultKind,
  mount: string,
  creds: { username: string; password: string },
  timeouts: { electionMs: number; audioMs: number } = { electionMs: 30_000, audioMs: 40_000 },
): Promise<RoundResult> {
  const old = await waitFor('a master', () => masterName(c, c.nodes), { timeoutMs: 30_000, intervalMs: 100 });
  const victim = c.node(old);
  const survivors = c.nodes.filter((n) => n !== victim);
  const source: SourceLoop = startSource(c, survivors[0]!, mount, creds);
  const listeners: ListenerMonitor[] = [];
  const sampler = new AcceptanceSampler(c, mount, creds);
  try {
    await waitServedEverywhere(c, mount, c.nodes, 60_000);
    listeners.push(...survivors.map((n) => startListener(c, `http://${n.ip}/_stream${mount}`)));
    await waitFor('listeners receiving', () => listeners.every((l) => l.receiving(500)), { timeoutMs: 20_000 });
    // A steady second before the fault, so the loss counts from a known rate.
    await new Promise((r) => setTimeout(r, 1000));
    const startsBefore = source.starts;
    const bytesBefore = listeners.map((l) => l.bytes);
    const t0 = Date.now();
    const restore = await inject(c, kind, victim);
    const newMaster = await waitFor(
      'a new master',
      async () => {
        const now = await masterName(c, survivors);
        return now !== undefined && now !== old ? now : undefined;
      },
      { timeoutMs: timeouts.electionMs, intervalMs: 20 },
    );
    const electedMs = Date.now() - t0;
    await waitFor('audio at every listener', () => listeners.every((l) => l.lastDataAt > t0 + 100 && l.receiving(300)), {
      timeoutMs: timeouts.audioMs,
      intervalMs: 20,
    });
    const audioBackMs = Date.now() - t0;
    // Let bursts and catch-up settle before counting what never arrived.
    await new Promise((r) => setTimeout(r, 3000));
    const spanMs = Date.now() - t0;
    const result: RoundResult = {
      kind,
      faultAt: t0,
      oldMaster: old,
      newMaster,
      electedMs,
      audioBackMs,
      silenceMs: listeners.map((l) => l.maxGapSince(t0)),
      lostMs: listeners.map((l, i) => Math.max(0, Math.round(spanMs - (l.bytes - bytesBefore[i]!) / STREAM_BYTES_PER_MS))),
      disconnects: listeners.reduce((a, l) => a + l.disconnects, 0),
      sourceRestarts: source.starts - startsBefore,
      maxAccepting: 0,
      samples: 0,
    };
    await restore();
    await sampler.stop();
    result.maxAccepting = sampler.maxAccepting;
    result.samples = sampler.samples;
    return result;
  } finally {
    await sampler.stop();
    await Promise.all([...listeners.map((l) => l.stop()), source.stop()]);
    await waitFor('every node present again', async () => (await liveNodes(c).catch(() => 0)) === c.nodes.length, { timeoutMs: 60_000, intervalMs: 200 });
    await c.waitEtcdHealthy(c.nodes, 30_000);
  }
}
