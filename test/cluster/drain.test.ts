import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Cluster, ClusterNode } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';
import { daemonCluster, liveMount, missingPrograms, startListener, withLogs } from './setup.js';

/** Where the front door of `front` sends a new listener of `mount` (its redirect target host). */
async function redirectTarget(c: Cluster, front: ClusterNode, mount: string): Promise<string> {
  const r = await c.execResult('client', ['curl', '-s', '-o', '/dev/null', '-w', '%{redirect_url}', '--max-time', '2', `http://${front.ip}${mount}`], {
    timeoutMs: 4000,
  });
  return r.stdout.trim() === '' ? '' : new URL(r.stdout.trim()).hostname;
}

async function targets(c: Cluster, mount: string, rounds: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < rounds; i++) for (const n of c.nodes) seen.add(await redirectTarget(c, n, mount));
  return seen;
}

test('drain: new listeners go elsewhere while a connected one keeps streaming; undrain brings the node back', { timeout: 180_000 }, async (t) => {
  const missing = missingPrograms(['radiod', 'redirectord', 'radioctl']);
  if (missing) return void t.skip(missing);
  const c = await daemonCluster(t);
  await withLogs(c, async () => {
    const mount = '/live.mp3';
    await liveMount(c, mount, c.nodes[0]!);
    const drained = c.nodes[1]!;
    // Every node is a target before the drain (the balancer spreads new listeners).
    await waitFor('the node to drain gets new listeners', async () => (await targets(c, mount, 3)).has(drained.ip), {
      timeoutMs: 30_000, intervalMs: 200,
    });
    const listener = startListener(c, `http://${drained.ip}/_stream${mount}`);
    await waitFor('listener on the drained node receiving', () => listener.receiving(), { timeoutMs: 20_000 });

    const r = await c.radioctl(['drain', drained.name]);
    assert.equal(r.code, 0, `radioctl drain failed: ${r.stderr || r.stdout}`);
    // The drain is one watch event away on every redirectord.
    await waitFor('no redirect to the drained node', async () => !(await targets(c, mount, 1)).has(drained.ip), {
      timeoutMs: 10_000, intervalMs: 200,
    });
    const after = await targets(c, mount, 5);
    assert.ok(!after.has(drained.ip), `a new listener was sent to the drained node: ${[...after].join(',')}`);
    assert.ok(after.size >= 1 && !after.has(''), `every front door still answers: ${[...after].join(',')}`);
    const status = JSON.parse(await c.exec('client', ['curl', '-s', '--max-time', '2', `http://${c.nodes[0]!.ip}/status.json`])) as {
      nodes: { name: string; draining: boolean }[];
    };
    assert.equal(status.nodes.find((n) => n.name === drained.name)?.draining, true, 'status.json shows the node draining');
    const bytesBefore = listener.bytes;
    await waitFor('the connected listener keeps receiving', () => listener.bytes > bytesBefore + 16_000, { timeoutMs: 10_000 });
    assert.equal(listener.disconnects, 0, 'the drained node kept its listener');

    const u = await c.radioctl(['undrain', drained.name]);
    assert.equal(u.code, 0, `radioctl undrain failed: ${u.stderr || u.stdout}`);
    await waitFor('the undrained node gets new listeners again', async () => (await targets(c, mount, 3)).has(drained.ip), {
      timeoutMs: 30_000, intervalMs: 200,
    });
  });
});
