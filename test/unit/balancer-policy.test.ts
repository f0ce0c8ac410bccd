import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AutoradioError, ErrorCode } from '../../src/common/errors.js';
import { DEFAULT_LB_POLICY, parsePolicy } from '../../src/redirectord/balancer/policy.js';
import { bandwidthAvailable, icecastOk, listenersAvailable, sameIpFamily } from '../../src/redirectord/balancer/filters.js';
import { bandwidthScore, listenersScore } from '../../src/redirectord/balancer/scorers.js';
import { best, random, weighted } from '../../src/redirectord/balancer/pickers.js';
import type { BalancerContext } from '../../src/redirectord/balancer/types.js';
import type { NodeStatus } from '../../src/coordination/node-status.js';
import { nodeStatus } from '../support/fixtures.js';

function node(name: string, over: Partial<NodeStatus> = {}): NodeStatus {
  return nodeStatus(name, { maxListeners: 0, reportedAt: 1, ...over });
}

const v4: BalancerContext = { clientFamily: 4, mount: '/a.mp3' };
const v6: BalancerContext = { clientFamily: 6, mount: '/a.mp3' };

function policyError(spec: string): AutoradioError {
  try {
    parsePolicy(spec);
  } catch (err) {
    assert.ok(err instanceof AutoradioError, `expected AutoradioError for "${spec}"`);
    assert.equal(err.code, ErrorCode.invalidPolicy);
    return err;
  }
  assert.fail(`"${spec}" was accepted`);
}

test('the default policy parses into one filter, one scorer and weighted', () => {
  const p = parsePolicy(DEFAULT_LB_POLICY);
  assert.deepEqual(p.filters.map((f) => f.name), ['listeners_available']);
  assert.deepEqual(p.scorers.map((s) => s.name), ['listeners_score']);
  assert.equal(p.picker.name, 'weighted');
  assert.equal(p.text, DEFAULT_LB_POLICY);
});

test('every name is accepted, filters and scorers in any order, spaces trimmed', () => {
  const p = parsePolicy(' bandwidth_score, icecast_ok ,same_ip_family,listeners_score,bandwidth_available,listeners_available, best');
  assert.deepEqual(p.filters.map((f) => f.name), ['icecast_ok', 'same_ip_family', 'bandwidth_available', 'listeners_available']);
  assert.deepEqual(p.scorers.map((s) => s.name), ['bandwidth_score', 'listeners_score']);
  assert.equal(p.picker.name, 'best');
  assert.equal(parsePolicy('random').picker.name, 'random');
  assert.equal(parsePolicy('random').filters.length, 0);
});

test('parse errors carry the policy code and name the problem', () => {
  assert.match(policyError('').message, /empty/);
  assert.match(policyError('   ').message, /empty/);
  assert.match(policyError('listeners_available,,weighted').message, /empty element/);
  assert.match(policyError('listeners_available,listeners_score').message, /does not end with a policy/);
  assert.match(policyError('weighted,listeners_available').message, /"weighted" must come last/);
  assert.match(policyError('best,weighted').message, /"best" must come last/);
  assert.match(policyError('listeners_available,bogus,weighted').message, /unknown name "bogus".*known filters: listeners_available/);
  assert.match(policyError('icecast_ok,icecast_ok,random').message, /listed twice/);
  assert.match(policyError('Weighted').message, /unknown name "Weighted"/);
});

test('listeners_available drops full nodes and keeps unlimited ones', () => {
  assert.equal(listenersAvailable.keep(node('a', { listeners: 9, maxListeners: 10 }), v4), true);
  assert.equal(listenersAvailable.keep(node('a', { listeners: 10, maxListeners: 10 }), v4), false);
  assert.equal(listenersAvailable.keep(node('a', { listeners: 11, maxListeners: 10 }), v4), false);
  assert.equal(listenersAvailable.keep(node('a', { listeners: 5000, maxListeners: 0 }), v4), true);
});

test('bandwidth_available leaves room for one more stream', () => {
  const limit = { maxBandwidthKbps: 1000 };
  // No listeners yet: a 128 kbit/s stream is assumed.
  assert.equal(bandwidthAvailable.keep(node('a', { ...limit, bandwidthKbps: 800 }), v4), true);
  assert.equal(bandwidthAvailable.keep(node('a', { ...limit, bandwidthKbps: 900 }), v4), false);
  // The mount's own bitrate wins over the guess.
  assert.equal(bandwidthAvailable.keep(node('a', { ...limit, bandwidthKbps: 900 }), { ...v4, bitrateKbps: 64 }), true);
  // Otherwise the node's average per listener: 960/30 = 32 kbit/s.
  assert.equal(bandwidthAvailable.keep(node('a', { ...limit, bandwidthKbps: 960, listeners: 30 }), v4), true);
  assert.equal(bandwidthAvailable.keep(node('a', { ...limit, bandwidthKbps: 970, listeners: 1 }), v4), false);
  assert.equal(bandwidthAvailable.keep(node('a', { bandwidthKbps: 1e9, maxBandwidthKbps: 0 }), v4), true);
});

test('icecast_ok and same_ip_family', () => {
  assert.equal(icecastOk.keep(node('a', { icecastOk: true }), v4), true);
  assert.equal(icecastOk.keep(node('a', { icecastOk: false }), v4), false);
  const only4 = node('a', { addresses: ['192.0.2.1'] });
  const only6 = node('b', { addresses: ['2001:db8::1'] });
  const both = node('c', { addresses: ['2001:db8::1', '192.0.2.3'] });
  const none = node('d', { addresses: [] });
  assert.deepEqual([only4, only6, both, none].map((n) => sameIpFamily.keep(n, v4)), [true, false, true, false]);
  assert.deepEqual([only4, only6, both, none].map((n) => sameIpFamily.keep(n, v6)), [false, true, true, false]);
});

test('scorers give spare capacity, 1 when unlimited, never below 0', () => {
  assert.equal(listenersScore.score(node('a', { listeners: 25, maxListeners: 100 }), v4), 0.75);
  assert.equal(listenersScore.score(node('a', { listeners: 250, maxListeners: 100 }), v4), 0);
  assert.equal(listenersScore.score(node('a', { listeners: 250, maxListeners: 0 }), v4), 1);
  assert.equal(bandwidthScore.score(node('a', { bandwidthKbps: 600, maxBandwidthKbps: 1000 }), v4), 0.4);
  assert.equal(bandwidthScore.score(node('a', { bandwidthKbps: 600, maxBandwidthKbps: 0 }), v4), 1);
});

test('pickers: weighted follows the cumulative weights, best the top score, random ignores scores', () => {
  const a = node('a');
  const b = node('b');
  const c = node('c');
  const scored = [
    { node: a, score: 0.2 },
    { node: b, score: 0 },
    { node: c, score: 0.6 },
  ];
  // Total 0.8: [0, 0.2) -> a, [0.2, 0.8) -> c; b has no spare capacity.
  assert.equal(weighted.pick(scored, () => 0), a);
  assert.equal(weighted.pick(scored, () => 0.24), a);
  assert.equal(weighted.pick(scored, () => 0.26), c);
  assert.equal(weighted.pick(scored, () => 0.9999999), c);
  assert.equal(weighted.pick([{ node: a, score: 0 }], () => 0.5), undefined);
  assert.equal(weighted.pick([], () => 0.5), undefined);

  assert.equal(best.pick(scored, () => 0.99), c);
  const tie = [
    { node: a, score: 0.5 },
    { node: b, score: 0.5 },
    { node: c, score: 0.1 },
  ];
  assert.equal(best.pick(tie, () => 0.1), a);
  assert.equal(best.pick(tie, () => 0.9), b);
  assert.equal(best.pick([{ node: a, score: 0 }], () => 0), undefined);

  assert.equal(random.pick(scored, () => 0.5), b);
  assert.equal(random.pick(scored, () => 0.99), c);
  assert.equal(random.pick([], () => 0.5), undefined);
});
