import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { startProcess, type Managed } from '../support/processes.js';
import { startBlackholeProxy } from '../support/blackhole-proxy.js';
import { waitFor } from '../support/wait.js';

interface ElectionEvent {
  event: string;
  name: string;
  t: number;
  reason?: string;
}

const TTL = 4;
let etcd: TestEtcd;
const running: Managed[] = [];

before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await Promise.all(running.map((p) => p.stop('SIGKILL')));
  await etcd.stop();
});

function contender(url: string, name: string, prefix: string): { proc: Managed; events: () => ElectionEvent[] } {
  const proc = startProcess(process.execPath, ['--import', 'tsx', 'test/support/contender.ts', url, name, String(TTL), prefix]);
  running.push(proc);
  const events = () =>
    proc.output.filter((l) => l.startsWith('{"event"')).map((l) => JSON.parse(l) as ElectionEvent);
  return { proc, events };
}

const last = (events: ElectionEvent[], kind: string) => events.filter((e) => e.event === kind).at(-1);
const isLeading = (events: ElectionEvent[]) => {
  const leadershipEvents = events.filter((e) => e.event === 'elected' || e.event === 'deposed' || e.event === 'stopped');
  return leadershipEvents.at(-1)?.event === 'elected';
};

/** Leadership intervals per contender must never overlap. */
function assertNoOverlap(all: ElectionEvent[][]): void {
  const intervals = all.flatMap((events) => {
    const out: [number, number, string][] = [];
    let start: number | undefined;
    for (const e of events) {
      if (e.event === 'elected') start = e.t;
      else if ((e.event === 'deposed' || e.event === 'stopped') && start !== undefined) {
        out.push([start, e.t, e.name]);
        start = undefined;
      }
    }
    if (start !== undefined) out.push([start, Number.POSITIVE_INFINITY, events[0]!.name]);
    return out;
  });
  for (const a of intervals) {
    for (const b of intervals) {
      if (a === b) continue;
      assert.ok(a[1] <= b[0] || b[1] <= a[0], `leaders overlap: ${a[2]} ${a[0]}-${a[1]} and ${b[2]} ${b[0]}-${b[1]}`);
    }
  }
}

test('exactly one of three contenders leads; graceful stop hands over in under a second', async () => {
  const prefix = '/autoradio/v1/election/graceful/';
  const a = contender(etcd.url, 'a', prefix);
  await waitFor('a elected', () => isLeading(a.events()), { timeoutMs: 15_000 });
  const b = contender(etcd.url, 'b', prefix);
  const c = contender(etcd.url, 'c', prefix);
  await waitFor('b and c campaigning', () => b.events().length > 0 && c.events().length > 0, { timeoutMs: 15_000 });
  // Give b and c the chance to (wrongly) claim leadership before asserting they did not.
  await waitFor('a still the only leader after the others joined', () => {
    assert.ok(!isLeading(b.events()) && !isLeading(c.events()));
    return isLeading(a.events());
  });
  const stoppedAt = Date.now();
  await a.proc.stop('SIGTERM');
  const next = await waitFor('b or c elected', () => [b, c].find((x) => isLeading(x.events())), { timeoutMs: 5000 });
  const handover = last(next.events(), 'elected')!.t - stoppedAt;
  console.log(`# measured: graceful_handover_ms=${handover}`);
  assert.ok(handover < 1000, `graceful handover took ${handover} ms`);
  assertNoOverlap([a.events(), b.events(), c.events()]);
  await Promise.all([b.proc.stop('SIGTERM'), c.proc.stop('SIGTERM')]);
});

test('kill -9 of the leader hands over within the lease TTL', async () => {
  const prefix = '/autoradio/v1/election/crash/';
  const a = contender(etcd.url, 'a', prefix);
  await waitFor('a elected', () => isLeading(a.events()), { timeoutMs: 15_000 });
  const b = contender(etcd.url, 'b', prefix);
  await waitFor('b campaigning', () => b.events().length > 0, { timeoutMs: 15_000 });
  const killedAt = Date.now();
  await a.proc.stop('SIGKILL');
  await waitFor('b elected', () => isLeading(b.events()), { timeoutMs: TTL * 1000 + 5000 });
  const failover = last(b.events(), 'elected')!.t - killedAt;
  console.log(`# measured: kill9_failover_ms=${failover} ttl_s=${TTL}`);
  // The lease outlives the process by at most one TTL, plus etcd's expiry granularity (~0.5 s).
  assert.ok(failover <= TTL * 1000 + 700, `failover took ${failover} ms with TTL ${TTL} s`);
  await b.proc.stop('SIGTERM');
});

test('a leader cut off from etcd steps down before another can be elected', async () => {
  const prefix = '/autoradio/v1/election/partition/';
  const target = new URL(etcd.url);
  const proxy = await startBlackholeProxy({ host: target.hostname, port: Number(target.port) });
  try {
    const a = contender(proxy.url, 'a', prefix);
    await waitFor('a elected', () => isLeading(a.events()), { timeoutMs: 15_000 });
    const b = contender(etcd.url, 'b', prefix);
    await waitFor('b campaigning', () => b.events().length > 0, { timeoutMs: 15_000 });
    const cutAt = Date.now();
    proxy.blackhole();
    await waitFor('b elected', () => isLeading(b.events()), { timeoutMs: TTL * 1000 + 6000 });
    const deposed = last(a.events(), 'deposed');
    assert.ok(deposed, 'the cut-off leader never stepped down');
    const elected = last(b.events(), 'elected')!;
    console.log(
      `# measured: partition_stepdown_ms=${deposed.t - cutAt} new_leader_ms=${elected.t - cutAt} margin_ms=${elected.t - deposed.t}`,
    );
    assert.ok(deposed.t < elected.t, 'the old leader was still acting when the new one was elected');
    assertNoOverlap([a.events(), b.events()]);

    // Healed: the old leader must not come back as leader while b holds the lease.
    proxy.restore();
    await waitFor('a campaigning again behind b', () => {
      assert.ok(!isLeading(a.events()), 'a took leadership back after the heal');
      return a.events().at(-1)!.t > elected.t || a.events().length >= 2;
    }, { timeoutMs: 10_000 });
    assert.ok(isLeading(b.events()));
    await a.proc.stop('SIGKILL');
    await b.proc.stop('SIGTERM');
  } finally {
    await proxy.close();
  }
});
