import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clientKey } from '../../src/common/client-key.js';
import { Balancer } from '../../src/redirectord/balancer/balancer.js';
import { DEFAULT_LB_POLICY, parsePolicy } from '../../src/redirectord/balancer/policy.js';
import { PENDING_PER_CLIENT, PENDING_TTL_MS } from '../../src/redirectord/balancer/predictive-load.js';
import { decideListenerResponse, type ListenerContext } from '../../src/redirectord/http/listener-decision.js';
import type { ClusterState } from '../../src/coordination/cluster-state.js';
import type { NodeStatus } from '../../src/coordination/node-status.js';
import type { BalancerContext } from '../../src/redirectord/balancer/types.js';
import { nodeStatus, seededRandom } from '../support/fixtures.js';

const ctx: BalancerContext = { clientFamily: 4, mount: '/live.mp3', clientAddress: '198.51.100.1' };
const POLICIES = [DEFAULT_LB_POLICY, 'listeners_score,best', 'random', 'weighted', 'bandwidth_score,weighted'];

function node(name: string, over: Partial<NodeStatus> = {}): NodeStatus {
  return nodeStatus(name, { addresses: ['192.0.2.1', '2001:db8::1'], reportedAt: 1_000_000, ...over });
}

test('a node whose Icecast is down is never chosen, though its 0 listeners score best', () => {
  for (const spec of POLICIES) {
    const b = new Balancer(parsePolicy(spec), seededRandom(1));
    let dead = 0;
    for (let i = 0; i < 300; i++) {
      const nodes = [
        node('dead', { icecastOk: false, listeners: 0, reportedAt: 1_000_000 + i }),
        node('ok', { listeners: 60, reportedAt: 1_000_000 + i }),
      ];
      if (b.choose(nodes, { ...ctx, clientAddress: `198.51.100.${i % 250}` })?.name === 'dead') dead++;
    }
    assert.equal(dead, 0, `${spec}: ${dead} of 300 picks went to the dead node`);
  }
});

test('draining, stale and wrong-family nodes are never chosen, whatever the policy', () => {
  for (const spec of POLICIES) {
    const b = new Balancer(parsePolicy(spec), seededRandom(2));
    const nodes = [
      node('drained', { draining: true }),
      node('stale', { reportedAt: 1_000_000 - 46_000 }),
      node('v6only', { addresses: ['2001:db8::6'] }),
      node('v4only', { addresses: ['192.0.2.4'], listeners: 99 }),
    ];
    for (let i = 0; i < 200; i++) {
      assert.equal(b.choose(nodes, { ...ctx, clientFamily: 4, probe: true })?.name, 'v4only', spec);
      assert.equal(b.choose(nodes, { ...ctx, clientFamily: 6, probe: true })?.name, 'v6only', spec);
    }
    // Nothing else left: no node rather than a bad one.
    assert.equal(b.choose(nodes.slice(0, 2), ctx), undefined, spec);
  }
});

test('a report 20 s behind its peers is still current; while etcd is down the frozen view stays usable', () => {
  const b = new Balancer(parsePolicy('random'), seededRandom(3));
  const behind = node('behind', { reportedAt: 1_000_000 - 20_000 });
  assert.equal(b.choose([behind, node('x', { icecastOk: false })], ctx)?.name, 'behind');
  // All reports equally old (no newer report anywhere): none is stale.
  assert.equal(b.choose([node('old', { reportedAt: 5 })], ctx)?.name, 'old');
});

test('HEAD requests are placed but never count: 90 HEADs do not fill a node', () => {
  const b = new Balancer(parsePolicy(DEFAULT_LB_POLICY), seededRandom(4));
  const nodes = [node('n1', { listeners: 10, maxListeners: 100 })];
  for (let i = 0; i < 90; i++) assert.equal(b.choose(nodes, { ...ctx, probe: true })?.name, 'n1');
  assert.equal(b.pendingListeners('n1'), 0);
  assert.equal(b.choose(nodes, ctx)?.name, 'n1');
  assert.equal(b.pendingListeners('n1'), 1);
});

test('one client address cannot fill a node; IPv6 counts per /64', () => {
  const b = new Balancer(parsePolicy(DEFAULT_LB_POLICY), seededRandom(5));
  const nodes = [node('n1', { listeners: 0, maxListeners: 10 })];
  for (let i = 0; i < 50; i++) assert.equal(b.choose(nodes, ctx)?.name, 'n1');
  assert.equal(b.pendingListeners('n1'), PENDING_PER_CLIENT);
  for (let i = 0; i < 50; i++) {
    const v6 = { ...ctx, clientFamily: 6 as const, clientAddress: `2001:db8:1:2:${i.toString(16)}::1` };
    assert.equal(b.choose(nodes, v6)?.name, 'n1');
  }
  assert.equal(b.pendingListeners('n1'), 2 * PENDING_PER_CLIENT, 'the 50 addresses of one /64 count as one client');
  // Distinct clients still fill the node, so a real burst cannot push it past 100 %.
  let placed = 0;
  for (let i = 0; i < 20; i++) if (b.choose(nodes, { ...ctx, clientAddress: `203.0.113.${i}` })) placed++;
  assert.equal(placed, 10 - 2 * PENDING_PER_CLIENT);
});

test('pending redirects expire on their own, without a new report', () => {
  let now = 5_000_000;
  const b = new Balancer(parsePolicy(DEFAULT_LB_POLICY), seededRandom(6), () => now);
  const nodes = [node('n1', { listeners: 0, maxListeners: 3 })];
  for (let i = 0; i < 3; i++) assert.ok(b.choose(nodes, { ...ctx, clientAddress: `203.0.113.${i}` }));
  assert.equal(b.choose(nodes, { ...ctx, clientAddress: '203.0.113.9' }), undefined, 'full while pending');
  now += PENDING_TTL_MS - 1;
  assert.equal(b.choose(nodes, { ...ctx, clientAddress: '203.0.113.9' }), undefined);
  now += 2;
  assert.equal(b.pendingListeners('n1'), 0);
  assert.equal(b.choose(nodes, { ...ctx, clientAddress: '203.0.113.9' })?.name, 'n1', 'same report, expired pendings');
});

test('decideListenerResponse: HEAD gets the same 302 but real GETs still find the node free', () => {
  const mount = { path: '/a.mp3', username: 'u', password: 'p', fallback: undefined, relay: undefined, transcoding: undefined };
  const state = {
    mounts: new Map([['/a.mp3', mount]]),
    nodes: new Map([['n1', node('n1', { listeners: 10, maxListeners: 100 })]]),
    master: undefined,
    revision: '1',
    connected: true,
    membershipSerial: 1,
  } as unknown as ClusterState;
  const b = new Balancer(parsePolicy(DEFAULT_LB_POLICY), seededRandom(7));
  const lc: ListenerContext = { domain: 'radio.example.org', httpPort: 80, enableIcecastProxy: true, remoteAddress: '198.51.100.3', method: 'HEAD' };
  for (let i = 0; i < 200; i++) assert.equal(decideListenerResponse('/a.mp3', state, b, lc).status, 302);
  assert.equal(b.pendingListeners('n1'), 0);
  for (let i = 0; i < 10; i++) {
    const get = decideListenerResponse('/a.mp3', state, b, { ...lc, method: 'GET', remoteAddress: `203.0.113.${i}` });
    assert.equal(get.status, 302);
  }
  assert.equal(b.pendingListeners('n1'), 10);
});

test('clientKey: IPv4 as is, IPv4-mapped as IPv4, IPv6 by /64 whatever the spelling', () => {
  assert.equal(clientKey('198.51.100.7'), '198.51.100.7');
  assert.equal(clientKey('::ffff:198.51.100.7'), '198.51.100.7');
  assert.equal(clientKey('2001:db8:1:2::1'), clientKey('2001:0db8:0001:0002:ffff:1:2:3'));
  assert.notEqual(clientKey('2001:db8:1:2::1'), clientKey('2001:db8:1:3::1'));
  assert.equal(clientKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(clientKey('::1'), '0:0:0:0::/64');
  assert.equal(clientKey('fe80::1%eth0'), clientKey('fe80::2'));
  assert.equal(clientKey('::ffff:1.2.3.4:5'), 'unknown');
  assert.equal(clientKey(undefined), 'unknown');
});
