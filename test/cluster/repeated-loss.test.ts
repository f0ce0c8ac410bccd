import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../support/wait.js';
import type { ClusterNode } from '../support/cluster.js';
import { sourceAcceptors } from './clients.js';
import { measured } from './measure.js';
import { daemonCluster, liveMount, masterNode, missingPrograms, startListener, withLogs } from './setup.js';

/**
 * One cluster, two attacks on the failover machinery:
 * - one peer cut from the master's Icecast (not from etcd, not from the other peer): a minority
 *   sees the master dead, so nothing may change (no false failover);
 * - two failovers in a row: the master's radiod and Icecast killed (-9), and the node elected
 *   next killed the same way as soon as it is elected, during its takeover. The third node must
 *   take the source, never two at once, its listener held throughout. etcd keeps running on all
 *   three nodes so the cluster keeps its quorum.
 */
test('a minority cut from the master changes nothing; two masters lost in a row: the third takes over alone', { timeout: 240_000 }, async (t) => {
  const missing = missingPrograms();
  if (missing) return void t.skip(missing);
  const c = await daemonCluster(t);
  await withLogs(c, async () => {
    const mount = '/twice.mp3';
    const first = await masterNode(c);
    const peers = c.nodes.filter((n) => n !== first);
    const { creds } = await liveMount(c, mount, peers[0]!);
    const accepting = () => sourceAcceptors(c, mount, creds);
    assert.deepEqual(await accepting(), [first.name]);

    // A minority (one peer of three) cut from the master's Icecast: no deposition.
    const cutPeer = peers[1]!;
    const rule = ['OUTPUT', '-o', 'eth0', '-p', 'tcp', '-d', first.ip, '--dport', '8000', '-j', 'DROP'];
    await c.exec(cutPeer, ['iptables', '-w', '-I', ...rule]);
    try {
      const cutAt = Date.now();
      await waitFor('the minority cut to last 10 s', async () => {
        const now = await accepting();
        assert.deepEqual(now, [first.name], 'a minority cut from the master deposed it (false failover)');
        return Date.now() - cutAt > 10_000;
      }, { timeoutMs: 40_000, intervalMs: 250 });
      assert.equal((await c.master())?.name, first.name);
    } finally {
      await c.exec(cutPeer, ['iptables', '-w', '-D', ...rule]);
    }

    // Two masters lost in a row.
    const kill = async (n: ClusterNode) => {
      await Promise.all([c.kill(n, 'radiod'), c.kill(n, 'icecast')]);
    };
    let third: ClusterNode | undefined;
    const listenerAt = (n: ClusterNode) => startListener(c, `http://${n.ip}/_stream${mount}`);
    // The listener sits on whichever node is not killed: unknown until the second election, so
    // one on each peer; the one on the surviving node counts.
    const listeners = new Map(peers.map((p) => [p.name, listenerAt(p)]));
    await waitFor('listeners receiving', () => [...listeners.values()].every((l) => l.receiving()), { timeoutMs: 20_000 });
    const t0 = Date.now();
    await kill(first);
    const second = await waitFor('a second master elected', async () => {
      const m = await c.master();
      return m && m.name !== first.name ? c.node(m.name) : undefined;
    }, { timeoutMs: 20_000, intervalMs: 50 });
    measured('double_loss_second_elected_ms', Date.now() - t0);
    const t1 = Date.now();
    await kill(second);
    third = peers.find((p) => p !== second)!;
    let most = 0;
    let last: string[] = [];
    await waitFor('the third node taking the source', async () => {
      last = await accepting();
      most = Math.max(most, last.length);
      return last.includes(third!.name);
    }, { timeoutMs: 40_000, intervalMs: 200 }).catch((err: Error) => {
      throw new Error(`${err.message}: accepting at the end: [${last.join(', ')}]`);
    });
    measured('double_loss_third_accepts_ms', Date.now() - t1);
    const survivor = listeners.get(third.name)!;
    await waitFor('listener on the third node receiving again', () => survivor.lastDataAt > t1 && survivor.receiving(), { timeoutMs: 30_000 });
    measured('double_loss_listener_gap_ms', survivor.maxGapSince(t0));
    assert.equal(most, 1, 'never two nodes accepting the source');
    assert.equal(survivor.disconnects, 0, 'the listener on the surviving node was never disconnected');
    assert.equal((await c.master())?.name, third.name);
  });
});
