import type { Etcd3 } from 'etcd3';
import { ClusterView } from '../../src/coordination/cluster-view.js';
import { NODES_PREFIX, nodeKey } from '../../src/coordination/keys.js';
import type { Mount } from '../../src/coordination/mount.js';
import type { NodeStatus } from '../../src/coordination/node-status.js';
import { Presence } from '../../src/coordination/presence.js';
import { REFRESH_MS } from '../../src/coordination/status-publish-policy.js';
import { buildNodeStatus } from '../../src/radiod/node-report.js';
import type { IcecastStats } from '../../src/radiod/icecast/stats.js';
import { seededRandom } from '../../test/support/fixtures.js';
import { onCleanup, round, sleep } from './common.js';
import { quietLog } from './fixture.js';

/**
 * NODES simulated radiods against one etcd, as in production: each polls its "Icecast" every
 * second, where listener counts move a little on every poll (a few mounts gain or lose one),
 * builds its status with buildNodeStatus and hands it to a real Presence. Starts are spread
 * over one refresh period, like nodes of a real cluster. A watch counts what reaches etcd;
 * a real ClusterView counts how often radiod's icecast.xml inputs (the mounts map) changed.
 */

export interface StatusLoad {
  windowS: number;
  revisionsPerSec: number;
  valueBytesPerSec: number;
  meanStatusBytes: number;
  viewChanges: number;
  mountsMapChanges: number;
  healthPublishMs: number;
  dbInUseBytes: number;
  /** db bytes in use per value byte written, over the window (etcd's own overhead per revision). */
  dbBytesPerValueByte: number;
}

async function dbInUse(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^etcd_mvcc_db_total_size_in_use_in_bytes (\S+)$/m.exec(text)?.[1] ?? NaN);
}

class SimulatedNode {
  readonly counts: number[];
  constructor(
    readonly index: number,
    private readonly mounts: readonly Mount[],
    private readonly random: () => number,
  ) {
    this.counts = mounts.map((m) => (index * 7 + m.path.length) % 5);
  }

  poll(now: number, icecastOk = true): NodeStatus {
    for (let k = 0; k < 5; k++) {
      const i = Math.floor(this.random() * this.counts.length);
      this.counts[i] = Math.max(0, this.counts[i]! + (this.random() < 0.5 ? -1 : 1));
    }
    const stats: IcecastStats = {
      serverId: 'Icecast 2.4.4',
      listeners: this.counts.reduce((a, b) => a + b, 0),
      mounts: this.mounts.map((m, i) => ({ mount: m.path, listeners: this.counts[i]! })),
    };
    const name = `node${this.index}`;
    const settings = { name, addresses: [`10.0.${Math.floor(this.index / 250)}.${(this.index % 250) + 1}`], icecastPort: 8000, maxListeners: 100_000, bandwidthMbps: 0 };
    return buildNodeStatus(settings, icecastOk ? stats : undefined, stats.listeners * 128, now);
  }
}

export async function measureStatusLoad(opts: { client: Etcd3; etcdUrl: string; mounts: readonly Mount[]; nodes: number; windowS: number }): Promise<StatusLoad> {
  const random = seededRandom(42);
  const sims = Array.from({ length: opts.nodes }, (_, i) => new SimulatedNode(i, opts.mounts, random));
  const presences = sims.map((s) => new Presence(opts.client, `node${s.index}`, { ttlSeconds: 10, log: quietLog }));
  onCleanup(async () => {
    await Promise.allSettled(presences.map((p) => p.stop()));
  });

  let counting = false;
  let revisions = 0;
  let valueBytes = 0;
  let healthSeenAt: number | undefined;
  const watcher = await opts.client.watch().prefix(NODES_PREFIX).create();
  watcher.on('data', (res) => {
    for (const e of res.events) {
      if (counting) {
        revisions++;
        valueBytes += e.kv.value.length;
      }
      if (e.kv.key.toString() === nodeKey('node7') && e.kv.value.toString().includes('"icecastOk":false')) healthSeenAt ??= Date.now();
    }
  });
  onCleanup(() => watcher.cancel());
  const view = new ClusterView(opts.client, quietLog);
  onCleanup(() => view.stop());
  await view.start();
  let viewChanges = 0;
  let mountsMapChanges = 0;
  let lastMounts = view.current().mounts;
  view.onChange((s) => {
    if (!counting) return;
    viewChanges++;
    if (s.mounts !== lastMounts) mountsMapChanges++;
    lastMounts = s.mounts;
  });

  let running = true;
  let node7Down = false;
  let downPublishedAt: number | undefined;
  const started = sims.map(() => false);
  const startedAt = Date.now();
  const loop = (async () => {
    while (running) {
      const now = Date.now();
      sims.forEach((s, i) => {
        // Staggered starts: node i joins i/N of a refresh period after the first.
        if (now - startedAt < (i / opts.nodes) * REFRESH_MS) return;
        if (!started[i]) {
          started[i] = true;
          presences[i]!.start();
        }
        const down = i === 7 && node7Down;
        if (down) downPublishedAt ??= Date.now();
        presences[i]!.publish(s.poll(now, !down));
      });
      await sleep(1000);
    }
  })();
  // Every node joined, and had one more refresh period to settle.
  await sleep(2 * REFRESH_MS + 1000);
  lastMounts = view.current().mounts;
  const db0 = await dbInUse(opts.etcdUrl);
  counting = true;
  const t0 = Date.now();
  await sleep(opts.windowS * 1000);
  counting = false;
  const dt = (Date.now() - t0) / 1000;
  const db1 = await dbInUse(opts.etcdUrl);
  const valueBytesWindow = valueBytes;

  // A health change: published at once, not at the next refresh.
  node7Down = true;
  const downAt = Date.now();
  while (healthSeenAt === undefined && Date.now() - downAt < REFRESH_MS + 5000) await sleep(20);
  const healthPublishMs = healthSeenAt === undefined || downPublishedAt === undefined ? NaN : healthSeenAt - downPublishedAt;
  running = false;
  await loop;
  return {
    windowS: round(dt, 1),
    revisionsPerSec: round(revisions / dt, 2),
    valueBytesPerSec: Math.round(valueBytesWindow / dt),
    meanStatusBytes: revisions > 0 ? Math.round(valueBytesWindow / revisions) : 0,
    viewChanges,
    mountsMapChanges,
    healthPublishMs,
    dbInUseBytes: db1,
    dbBytesPerValueByte: valueBytesWindow > 0 ? round(Math.max(0, db1 - db0) / valueBytesWindow, 2) : NaN,
  };
}
