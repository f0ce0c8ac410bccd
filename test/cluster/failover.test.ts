import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../support/wait.js';
import { measured } from './measure.js';
import { daemonCluster, liveMount, masterNode, missingPrograms, startListener, waitServedEverywhere, withLogs } from './setup.js';

test('master crash: kill -9 radiod+Icecast+etcd of the master; listeners elsewhere keep their connection', { timeout: 180_000 }, async (t) => {
  const missing = missingPrograms();
  if (missing) return void t.skip(missing);
  const c = await daemonCluster(t);
  await withLogs(c, async () => {
    const master = await masterNode(c);
    const survivors = c.nodes.filter((n) => n !== master);
    const mount = '/live.mp3';
    // The source enters through a surviving node's front door and is proxied to the master.
    const { source } = await liveMount(c, mount, survivors[0]!);
    const listeners = survivors.map((n) => startListener(c, `http://${n.ip}/_stream${mount}`));
    await waitFor('listeners receiving', () => listeners.every((l) => l.receiving()), { timeoutMs: 20_000 });
    const startsBefore = source.starts;

    const t0 = Date.now();
    await Promise.all((['radiod', 'icecast', 'etcd'] as const).map((p) => c.kill(master, p, 'SIGKILL')));
    const next = await waitFor('a new master', async () => {
      const m = await c.master({ endpoints: survivors.map((n) => n.etcdUrl) }).catch(() => undefined);
      return m && m.name !== master.name ? m : undefined;
    }, { timeoutMs: 30_000, intervalMs: 100 });
    const electedMs = Date.now() - t0;
    await waitServedEverywhere(c, mount, survivors, 40_000);
    await waitFor('listeners receiving audio again', () => listeners.every((l) => l.lastDataAt > t0 + electedMs && l.receiving()), {
      timeoutMs: 40_000,
      intervalMs: 100,
    });
    const recoveredMs = Date.now() - t0;
    const gap = Math.max(...listeners.map((l) => l.maxGapSince(t0)));
    const disconnects = listeners.reduce((a, l) => a + l.disconnects, 0);
    measured('master_crash_new_master_ms', electedMs);
    measured('master_crash_audio_back_ms', recoveredMs);
    measured('master_crash_listener_audio_gap_ms', gap);
    measured('master_crash_listener_disconnects', disconnects);
    measured('master_crash_source_reconnects', source.starts - startsBefore);
    assert.notEqual(next.name, master.name);
    assert.equal(source.starts, startsBefore, 'the source was held across the failover, never reconnected');
    assert.equal(disconnects, 0, 'listeners on surviving nodes keep their connection');
  });
});
