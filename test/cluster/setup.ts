import { readFileSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { builtPrograms, Cluster, type ClusterNode, type ClusterOptions } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';
import { ListenerMonitor, SourceLoop } from './clients.js';

/** Why the daemon cluster tests cannot run yet (a main not built), or undefined. */
export function missingPrograms(needed: readonly ('radiod' | 'redirectord' | 'radioctl')[] = ['radiod', 'redirectord']): string | undefined {
  const built = builtPrograms();
  const missing = needed.filter((p) => !built[p]);
  return missing.length ? `not built yet: ${missing.map((m) => `dist/${m}/main.js`).join(', ')} (run npx tsc -p tsconfig.json)` : undefined;
}

/**
 * A 3-node cluster with the daemons, stopped (with every client) when the test ends. On
 * failure the run's logs are printed, so a red CI run says what each daemon said last.
 */
const clientsOf = new WeakMap<Cluster, { stop(): Promise<void> }[]>();

export async function daemonCluster(t: TestContext, opts: ClusterOptions = {}): Promise<Cluster> {
  const c = await Cluster.start({ nodes: 3, daemons: true, ...opts });
  const clients: { stop(): Promise<void> }[] = [];
  clientsOf.set(c, clients);
  t.after(async () => {
    for (const cl of clients) await cl.stop();
    await c.stop();
  });
  try {
    await c.waitDaemonsReady(30_000);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${c.describeLogs(20)}`);
  }
  return c;
}

function track<T extends { stop(): Promise<void> }>(c: Cluster, client: T): T {
  clientsOf.get(c)?.push(client);
  return client;
}

/** Runs a test body; a failure carries the tail of every daemon log of the run. */
export async function withLogs(c: Cluster, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    const e = err as Error;
    e.message = `${e.message}\n${c.describeLogs(20)}`;
    throw e;
  }
}

export function startSource(c: Cluster, front: ClusterNode, mount: string, creds: { username: string; password: string }): SourceLoop {
  return track(c, new SourceLoop(c, `http://${front.ip}${mount}`, creds).start());
}

export function startListener(c: Cluster, url: string, gapThresholdMs = 1000): ListenerMonitor {
  return track(c, new ListenerMonitor(c, url, { gapThresholdMs }).start());
}

/** Waits until every given node's Icecast lists `mount` (source or connected relay). */
export async function waitServedEverywhere(c: Cluster, mount: string, nodes: readonly ClusterNode[] = c.nodes, timeoutMs = 30_000): Promise<number> {
  const t0 = Date.now();
  await waitFor(`${mount} served on ${nodes.map((n) => n.name).join(',')}`, async () => {
    const lists = await Promise.all(nodes.map((n) => c.icecastMounts(n)));
    return lists.every((l) => l.includes(mount));
  }, { timeoutMs, intervalMs: 100 });
  return Date.now() - t0;
}

/** Whether radiod has rendered `mount` into the node's icecast.xml. */
export function configMentions(node: ClusterNode, mount: string): boolean {
  try {
    return readFileSync(node.icecastConfig, 'utf8').includes(`>${mount}<`);
  } catch {
    return false;
  }
}

/** The current master's node, by the election keys as read through `via` nodes' members. */
export async function masterNode(c: Cluster, via: readonly ClusterNode[] = c.nodes): Promise<ClusterNode> {
  const m = await waitFor('a master', () => c.master({ endpoints: via.map((n) => n.etcdUrl) }), { timeoutMs: 20_000, intervalMs: 100 });
  return c.node(m.name);
}

/** Creates a mount, starts a reconnecting source through `front` and waits until every node serves it. */
export async function liveMount(c: Cluster, mount: string, front: ClusterNode) {
  const created = await c.createMount(mount);
  const source = startSource(c, front, mount, created);
  try {
    await waitServedEverywhere(c, mount, c.nodes, 40_000);
  } catch (err) {
    throw new Error(`${(err as Error).message}\nsource output: ${source.lastOutput.join('\n')}`);
  }
  return { creds: created, source };
}

