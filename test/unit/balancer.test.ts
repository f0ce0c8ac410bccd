import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Balancer } from '../../src/redirectord/balancer/balancer.js';
import { parsePolicy } from '../../src/redirectord/balancer/policy.js';
import type { BalancerContext } from '../../src/redirectord/balancer/types.js';
import type { NodeStatus } from '../../src/coordination/node-status.js';
import { nodeStatus, seededRandom } from '../support/fixtures.js';


function node(name: string, over: Partial<NodeStatus> = {}): NodeStatus {
  return nodeStatus(name, { reportedAt: 1, ...over });
}

const ctx: BalancerContext = { clientFamily: 4, mount: '/live.mp3' };

/** Each call a different listener address, so the per-client cap of the predictive load stays out of the way. */
let listenerSeq = 0;
function fresh(c: BalancerContext): BalancerContext {
  listenerSeq++;
  return { ...c, clientAddress: `10.${(listenerSeq >> 16) & 255}.${(listenerSeq >> 8) & 255}.${listenerSeq & 255}` };
}

/** Pearson's chi-square statistic of observed counts against expected probabilities. */
function chiSquare(observed: number[], expectedP: number[]): number {
  const total = observed.reduce((a, b) => a + b, 0);
  return observed.reduce((sum, o, i) => {
    const e = total * expectedP[i]!;
    return sum + ((o - e) * (o - e)) / e;
  }, 0);
}

// Chi-square critical value for 2 degrees of freedom at p = 0.001.
const CHI2_2DF_P001 = 13.82;

test('weighted spreads listeners in proportion to spare capacity', () => {
  for (const seed of [1, 2, 3]) {
    const b = new Balancer(parsePolicy('listeners_available,listeners_score,weighted'), seededRandom(seed));
    const counts = { a: 0, b: 0, c: 0 } as Record<string, number>;
    const picks = 20_000;
    for (let i = 0; i < picks; i++) {
      // A fresh report every time, so predictive load does not shift the weights.
      const nodes = [
        node('a', { listeners: 0, reportedAt: i }),
        node('b', { listeners: 50, reportedAt: i }),
        node('c', { listeners: 75, reportedAt: i }),
        node('full', { listeners: 100, reportedAt: i }),
      ];
      const chosen = b.choose(nodes, fresh(ctx));
      assert.ok(chosen);
      counts[chosen.name] = (counts[chosen.name] ?? 0) + 1;
    }
    assert.equal(counts['full'], undefined, 'a full node was chosen');
    // Spare capacity 1 : 0.5 : 0.25.
    const chi2 = chiSquare([counts['a']!, counts['b']!, counts['c']!], [4 / 7, 2 / 7, 1 / 7]);
    assert.ok(chi2 < CHI2_2DF_P001, `seed ${seed}: chi2 ${chi2.toFixed(2)} for ${JSON.stringify(counts)}`);
  }
});

test('random spreads uniformly over the nodes that pass the filters', () => {
  const b = new Balancer(parsePolicy('icecast_ok,random'), seededRandom(7));
  const counts = [0, 0, 0];
  for (let i = 0; i < 20_000; i++) {
    const nodes = [
      node('n0', { listeners: 0, maxListeners: 0, reportedAt: i }),
      node('n1', { listeners: 99, reportedAt: i }),
      node('down', { icecastOk: false, reportedAt: i }),
      node('n2', { listeners: 10, reportedAt: i }),
    ];
    const chosen = b.choose(nodes, fresh(ctx));
    assert.ok(chosen && chosen.name !== 'down');
    counts[Number(chosen.name.slice(1))]! += 1;
  }
  const chi2 = chiSquare(counts, [1 / 3, 1 / 3, 1 / 3]);
  assert.ok(chi2 < CHI2_2DF_P001, `chi2 ${chi2.toFixed(2)} for ${counts.join(',')}`);
});

test('best always picks the node with the most spare capacity', () => {
  const b = new Balancer(parsePolicy('listeners_available,listeners_score,best'), seededRandom(3));
  for (let i = 0; i < 100; i++) {
    const nodes = [node('a', { listeners: 40, reportedAt: i }), node('b', { listeners: 20, reportedAt: i })];
    assert.equal(b.choose(nodes, fresh(ctx))?.name, 'b');
  }
});

test('predictive load: redirects count until the next report, nobody goes above 100 %', () => {
  const b = new Balancer(parsePolicy('listeners_available,listeners_score,weighted'), seededRandom(11));
  const report1 = [node('a', { listeners: 0, maxListeners: 10 }), node('b', { listeners: 5, maxListeners: 10 })];
  const counts: Record<string, number> = { a: 0, b: 0 };
  for (let i = 0; i < 15; i++) {
    const chosen = b.choose(report1, fresh(ctx));
    assert.ok(chosen, `redirect ${i} found no node although capacity was left`);
    counts[chosen.name]! += 1;
  }
  // Exactly the spare capacity was handed out: 10 to a, 5 to b.
  assert.deepEqual(counts, { a: 10, b: 5 });
  assert.equal(b.pendingListeners('a'), 10);
  // Between reports the cluster now counts as full: 503.
  assert.equal(b.choose(report1, fresh(ctx)), undefined);
  assert.equal(b.choose(report1, fresh(ctx)), undefined);

  // a reports: only 4 of the 10 redirected listeners actually arrived. Its count restarts
  // from the report; b's estimate (no new report) still holds.
  const report2 = [
    node('a', { listeners: 4, maxListeners: 10, reportedAt: 2 }),
    node('b', { listeners: 5, maxListeners: 10 }),
  ];
  const again: Record<string, number> = { a: 0, b: 0 };
  for (let i = 0; i < 6; i++) again[b.choose(report2, fresh(ctx))!.name]! += 1;
  assert.deepEqual(again, { a: 6, b: 0 });
  assert.equal(b.choose(report2, fresh(ctx)), undefined);
});

test('predictive load also counts bandwidth between reports', () => {
  const b = new Balancer(parsePolicy('bandwidth_available,random'), seededRandom(5));
  const nodes = [node('a', { maxListeners: 0, maxBandwidthKbps: 1000 })];
  const bitrate = { ...ctx, bitrateKbps: 128 };
  // 128 * 7 = 896 + 128 = 1024 > 1000: the 8th listener would not fit.
  let sent = 0;
  while (b.choose(nodes, fresh(bitrate))) sent += 1;
  assert.equal(sent, 7);
});

test('undefined (503) when every node is full, down, or there are none', () => {
  const b = new Balancer(parsePolicy('listeners_available,icecast_ok,listeners_score,weighted'), seededRandom(1));
  assert.equal(b.choose([], fresh(ctx)), undefined);
  assert.equal(
    b.choose([node('a', { listeners: 100 }), node('b', { listeners: 50, icecastOk: false })], fresh(ctx)),
    undefined,
  );
  // Without the filter, the scorer alone still keeps listeners off a full node.
  const scoreOnly = new Balancer(parsePolicy('listeners_score,weighted'), seededRandom(1));
  assert.equal(scoreOnly.choose([node('a', { listeners: 100 })], fresh(ctx)), undefined);
});

test('same_ip_family keeps IPv6 listeners on nodes with an IPv6 address', () => {
  const b = new Balancer(parsePolicy('same_ip_family,random'), seededRandom(9));
  const nodes = [node('v4', { addresses: ['192.0.2.1'] }), node('v6', { addresses: ['2001:db8::1'] })];
  for (let i = 0; i < 50; i++) {
    assert.equal(b.choose(nodes, { clientFamily: 6, mount: '/x.mp3' })?.name, 'v6');
    assert.equal(b.choose(nodes, { clientFamily: 4, mount: '/x.mp3' })?.name, 'v4');
  }
});

test('nodes that left are forgotten by the predictive bookkeeping', () => {
  const b = new Balancer(parsePolicy('random'), seededRandom(2));
  b.choose([node('gone')], fresh(ctx));
  assert.equal(b.pendingListeners('gone'), 1);
  b.choose([node('other')], fresh(ctx));
  assert.equal(b.pendingListeners('gone'), 0);
});
