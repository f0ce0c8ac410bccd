import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../support/wait.js';
import { icecastAcceptsSource } from './clients.js';
import { measured } from './measure.js';
import { daemonCluster, liveMount, masterNode, missingPrograms, startListener, withLogs } from './setup.js';

test('partition of the master: it stops acting as master, the majority elects another, it rejoins as relay', { timeout: 180_000 }, async (t) => {
  const missing = missingPrograms();
  if (missing) return void t.skip(missing);
  const c = await daemonCluster(t);
  await withLogs(c, async () => {
    const master = await masterNode(c);
    const majority = c.nodes.filter((n) => n !== master);
    const mount = '/part.mp3';
    const { creds } = await liveMount(c, mount, majority[0]!);
    const accepting = async () => {
      const r = await Promise.all(c.nodes.map((n) => icecastAcceptsSource(c, n.name, mount, creds)));
      return c.nodes.filter((_, i) => r[i]).map((n) => n.name);
    };
    // The probe tells master from relays before anything happens.
    assert.deepEqual(await accepting(), [master.name]);
    const listener = startListener(c, `http://${majority[1]!.ip}/_stream${mount}`);
    await waitFor('listener receiving', () => listener.receiving(), { timeoutMs: 20_000 });

    const t0 = Date.now();
    await c.isolate(master);
    let maxAccepting = 0;
    let oldStoppedMs = -1;
    let newAcceptsMs = -1;
    let newMaster = '';
    let last: string[] = [];
    await waitFor('old master fenced and a new one accepting', async () => {
      const now = await accepting();
      last = now;
      maxAccepting = Math.max(maxAccepting, now.length);
      if (oldStoppedMs < 0 && !now.includes(master.name)) oldStoppedMs = Date.now() - t0;
      const other = now.find((n) => n !== master.name);
      if (newAcceptsMs < 0 && other) {
        newAcceptsMs = Date.now() - t0;
        newMaster = other;
      }
      return oldStoppedMs >= 0 && newAcceptsMs >= 0;
    }, { timeoutMs: 40_000, intervalMs: 250 }).catch((err: Error) => {
      throw new Error(`${err.message}: nodes accepting the source at the end: [${last.join(', ')}] (cut-off master ${master.name})`);
    });
    const elected = await c.master({ endpoints: majority.map((n) => n.etcdUrl) });
    await waitFor('majority listener receiving again', () => listener.lastDataAt > t0 + newAcceptsMs && listener.receiving(), {
      timeoutMs: 30_000,
    });
    measured('partition_old_master_stops_accepting_ms', oldStoppedMs);
    measured('partition_new_master_accepts_ms', newAcceptsMs);
    measured('partition_max_nodes_accepting_source', maxAccepting);
    measured('partition_majority_listener_gap_ms', listener.maxGapSince(t0));
    assert.equal(maxAccepting, 1, 'never two Icecasts accepting the source');
    assert.equal(elected?.name, newMaster, 'the accepting node is the elected master');

    const t1 = Date.now();
    await c.heal(master);
    await waitFor('healed node serves the mount as a relay', async () => {
      const mounts = await c.icecastMounts(master);
      return mounts.includes(mount) && !(await icecastAcceptsSource(c, master.name, mount, creds));
    }, { timeoutMs: 40_000, intervalMs: 250 });
    measured('partition_heal_to_relay_ms', Date.now() - t1);
    assert.deepEqual(await accepting(), [newMaster], 'after the heal there is still exactly one master');
    assert.equal((await c.master())?.name, newMaster, 'the healed node does not take mastership back');
  });
});
