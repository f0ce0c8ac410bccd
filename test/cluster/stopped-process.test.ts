import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../support/wait.js';
import { signalPid } from '../support/netns.js';
import type { Cluster, ClusterNode, ProcName } from '../support/cluster.js';
import { sourceAcceptors } from './clients.js';
import { measured } from './measure.js';
import { daemonCluster, liveMount, masterNode, missingPrograms, startListener, withLogs } from './setup.js';

/**
 * A master process stopped (SIGSTOP, not killed) for longer than the lease, then resumed: the
 * cluster must fail over without two nodes ever taking the source, and the resumed process must
 * not act on what it knew before (take the source, or keep its master layout). Checked from
 * outside: which nodes' Icecast takes the mount's real password. One cluster, both cases.
 */

type Accepting = () => Promise<string[]>;

/** Samples who accepts the source until `until` holds; returns the most at once. */
async function watchAcceptance(accepting: Accepting, what: string, until: (now: string[]) => boolean, timeoutMs: number): Promise<number> {
  let most = 0;
  let last: string[] = [];
  await waitFor(what, async () => {
    last = await accepting();
    most = Math.max(most, last.length);
    return until(last);
  }, { timeoutMs, intervalMs: 200 }).catch((err: Error) => {
    throw new Error(`${err.message}: accepting at the end: [${last.join(', ')}]`);
  });
  return most;
}

/** Stops `proc` on `node` for `stoppedMs` while sampling acceptance; returns who leads after the resume. */
async function stopAndResume(c: Cluster, accepting: Accepting, node: ClusterNode, proc: ProcName, stoppedMs: number, label: string): Promise<string> {
  const rec = c.proc(node, proc);
  assert.ok(rec, `${proc} of ${node.name} runs`);
  const t0 = Date.now();
  assert.ok(signalPid(rec.pid, 'SIGSTOP'));
  let most: number;
  let successor = '';
  try {
    most = await watchAcceptance(accepting, `another node taking the source while ${proc} of ${node.name} is stopped`, (now) => {
      successor = now.find((n) => n !== node.name) ?? '';
      return successor !== '';
    }, 30_000);
    measured(`${label}_new_master_accepts_ms`, Date.now() - t0);
    // Stay stopped past the lease TTL, still watching.
    const until = t0 + stoppedMs;
    most = Math.max(most, await watchAcceptance(accepting, 'the stop to last', () => Date.now() >= until, stoppedMs + 20_000));
  } finally {
    signalPid(rec.pid, 'SIGCONT');
  }
  const resumedAt = Date.now();
  // After the resume: never the resumed node, never two; it serves the mount as a relay.
  most = Math.max(most, await watchAcceptance(accepting, `${node.name} settled as a relay after the resume`, (now) => {
    assert.ok(!now.includes(node.name), `${node.name} took the source after ${proc} was resumed (stale state)`);
    return Date.now() - resumedAt > 5000;
  }, 30_000));
  assert.equal(most, 1, 'never two nodes accepting the source');
  assert.equal((await c.master())?.name, successor, 'the node that took the source is the elected master');
  return successor;
}

test('SIGSTOP of the master radiod, then of the next master Icecast, each past the lease: one acceptor, the resumed node a relay', { timeout: 240_000 }, async (t) => {
  const missing = missingPrograms();
  if (missing) return void t.skip(missing);
  const c = await daemonCluster(t);
  await withLogs(c, async () => {
    const first = await masterNode(c);
    const mount = '/stopped.mp3';
    const front = c.nodes.find((n) => n !== first)!;
    const { creds } = await liveMount(c, mount, front);
    const accepting = () => sourceAcceptors(c, mount, creds);
    assert.deepEqual(await accepting(), [first.name]);
    const stoppedMs = c.leaseTtl * 2000;

    const second = await stopAndResume(c, accepting, first, 'radiod', stoppedMs, 'sigstop_master_radiod');
    const secondNode = c.node(second);
    const listenerNode = c.nodes.find((n) => n !== first && n !== secondNode)!;
    const listener = startListener(c, `http://${listenerNode.ip}/_stream${mount}`);
    await waitFor('listener receiving', () => listener.receiving(), { timeoutMs: 20_000 });

    const t1 = Date.now();
    const third = await stopAndResume(c, accepting, secondNode, 'icecast', stoppedMs, 'sigstop_master_icecast');
    assert.notEqual(third, second);
    await waitFor('listener receiving after the Icecast failover', () => listener.lastDataAt > t1 && listener.receiving(), { timeoutMs: 30_000 });
    measured('sigstop_master_icecast_listener_gap_ms', listener.maxGapSince(t1));
    assert.equal(listener.disconnects, 0, 'the listener was never disconnected');
  });
});
