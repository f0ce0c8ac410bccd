import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { nodeStatus } from '../support/fixtures.js';
import { createLogger, ThrottledLog } from '../../src/common/logger.js';
import { ClusterView } from '../../src/coordination/cluster-view.js';
import { Elector } from '../../src/coordination/elector.js';
import { LISTENER_HISTORY_KEY, mountKey, nodeKey } from '../../src/coordination/keys.js';
import { MINUTE_MS, parseListenerHistory, type ListenerHistory } from '../../src/coordination/listener-history.js';
import { MasterCandidacy } from '../../src/radiod/candidacy.js';
import { ListenerHistoryWriter, type HistoryClock } from '../../src/radiod/listener-history-writer.js';

/**
 * The listener history as radiod keeps it: per node, its own etcd client, cluster view, election
 * lease and master candidacy, and the writer asking that candidacy whether it is master, against
 * a real etcd. Minutes last a second (the writer's clock and timer are injected), so the test
 * sees dozens of minutes: the series grows by one sample per minute, written by the master only,
 * and survives the restart of the master's pieces and of every node.
 */

const SCALE = 60;
const MOUNT = '/live.mp3';
const t0 = Date.now();
/** One real second is one minute of this clock, for the writer's minutes and its timer alike. */
const fastClock: HistoryClock = {
  now: () => t0 + (Date.now() - t0) * SCALE,
  after: (ms, fn) => {
    const timer = setTimeout(fn, Math.max(1, ms / SCALE));
    return () => clearTimeout(timer);
  },
};

let etcd: TestEtcd;
let admin: Etcd3;
const log = createLogger('test', 'warn');
/** Minute (of each write's `end`) -> the nodes that wrote it. */
const writers = new Map<number, Set<string>>();

interface RadiodPieces {
  name: string;
  candidacy: MasterCandidacy;
  stop(): Promise<void>;
}

/** A client whose puts of the history key are recorded with the writing node's name. */
function recordingClient(client: Etcd3, name: string): Etcd3 {
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop !== 'put') return Reflect.get(target, prop, receiver) as unknown;
      return (key: string) => {
        const builder = target.put(key);
        if (key !== LISTENER_HISTORY_KEY) return builder;
        return {
          value: (v: string) => {
            const end = parseListenerHistory(v)!.end;
            writers.set(end, (writers.get(end) ?? new Set()).add(name));
            return builder.value(v);
          },
        };
      };
    },
  });
}

async function startPieces(name: string): Promise<RadiodPieces> {
  const client = new Etcd3({ hosts: etcd.url });
  const view = new ClusterView(client, log);
  await view.start();
  const elector = new Elector(client, { ttlSeconds: 5, log });
  elector.start();
  const candidacy = new MasterCandidacy(elector, { name, addresses: ['127.0.0.1'], icecastPort: 8000 }, { log, onChange: () => {} });
  candidacy.start();
  const writer = new ListenerHistoryWriter({
    client: recordingClient(client, name),
    view,
    isMaster: () => candidacy.role === 'master',
    throttled: new ThrottledLog(log),
    clock: fastClock,
  });
  writer.start();
  return {
    name,
    candidacy,
    async stop() {
      // radiod's shutdown order: the writer first, then the candidacy, the elections, the view.
      writer.stop();
      await candidacy.stop('test');
      await elector.stop();
      await view.stop();
      client.close();
    },
  };
}

async function history(): Promise<ListenerHistory> {
  const v = await admin.get(LISTENER_HISTORY_KEY).string();
  const h = v === null ? undefined : parseListenerHistory(v);
  if (!h) throw new Error('no listener history yet');
  return h;
}

/** The sample for `minute`, or undefined when the series does not reach back that far. */
function sampleAt(h: ListenerHistory, minute: number): number | null | undefined {
  const index = h.total.length - 1 - (h.end - minute) / MINUTE_MS;
  return index >= 0 ? h.total[index] : undefined;
}

async function waitForMinutes(count: number, after: number): Promise<ListenerHistory> {
  return waitFor(`${count} more minutes of history`, async () => {
    const h = await history().catch(() => undefined);
    return h && h.end >= after + count * MINUTE_MS ? h : undefined;
  }, { timeoutMs: 20_000, intervalMs: 100 });
}

const running: RadiodPieces[] = [];

before(async () => {
  etcd = await startEtcd();
  admin = new Etcd3({ hosts: etcd.url });
  await admin.put(mountKey(MOUNT)).value(JSON.stringify({ path: MOUNT, username: 'source', password: 'secret-password-1' }));
  // Listeners as the nodes report them: 3 on a, 2 on b.
  await admin.put(nodeKey('a')).value(JSON.stringify(nodeStatus('a', { mounts: { [MOUNT]: 3 }, listeners: 3 })));
  await admin.put(nodeKey('b')).value(JSON.stringify(nodeStatus('b', { mounts: { [MOUNT]: 2 }, listeners: 2 })));
});

after(async () => {
  await Promise.all(running.map((p) => p.stop().catch(() => undefined)));
  admin?.close();
  await etcd?.stop();
});

function minutesWrittenBy(name: string, from: number, to: number): number[] {
  return [...writers].filter(([m, who]) => m >= from && m <= to && who.has(name)).map(([m]) => m);
}

test('one sample a minute, written by the master only; the series survives the restart of the master and of every node', { timeout: 120_000 }, async () => {
  running.push(await startPieces('a'));
  const a = running[0]!;
  await waitFor('a is master', () => a.candidacy.role === 'master', { timeoutMs: 10_000 });
  running.push(await startPieces('b'));
  const b = running[1]!;

  const start = fastClock.now();
  const first = await waitForMinutes(5, start);
  assert.deepEqual(first.mounts[MOUNT]!.slice(-3), [5, 5, 5], 'listeners of both nodes, per minute');
  assert.equal(first.total.at(-1), 5);
  assert.deepEqual(minutesWrittenBy('b', 0, first.end), [], 'the node that is not master wrote nothing');
  // One minute may slip on a loaded machine (a timer late by more than a scaled minute).
  assert.ok(minutesWrittenBy('a', start, first.end).length >= 4, 'the master wrote (nearly) every minute');
  assert.ok(writers.get(first.end)?.has('a'), 'the last sample is the master\'s');

  // The master's radiod restarts: b takes over and continues the same series.
  await a.stop();
  running.shift();
  await waitFor('b is master', () => b.candidacy.role === 'master', { timeoutMs: 10_000 });
  const bFrom = fastClock.now();
  running.push(await startPieces('a'));
  const second = await waitForMinutes(5, bFrom);
  for (let m = first.end - 4 * MINUTE_MS; m <= first.end; m += MINUTE_MS) {
    assert.equal(sampleAt(second, m), sampleAt(first, m), `minute ${(m - first.end) / MINUTE_MS} kept across the change of master`);
  }
  assert.deepEqual(minutesWrittenBy('a', bFrom + MINUTE_MS, second.end), [], 'the restarted node, not master, wrote nothing');

  // Every node restarts: the new master reads the series back from etcd and continues it.
  await Promise.all(running.splice(0).map((p) => p.stop()));
  const downAt = fastClock.now();
  running.push(await startPieces('b'), await startPieces('a'));
  const third = await waitForMinutes(5, downAt);
  for (let m = second.end - 4 * MINUTE_MS; m <= second.end; m += MINUTE_MS) {
    assert.equal(sampleAt(third, m), sampleAt(second, m), `minute ${(m - second.end) / MINUTE_MS} kept across the restart of every node`);
  }
  assert.equal(third.total.at(-1), 5);
  const twice = [...writers].filter(([, who]) => who.size > 1).map(([m]) => (m - t0) / MINUTE_MS);
  assert.deepEqual(twice, [], 'no minute was written by two nodes');
});
