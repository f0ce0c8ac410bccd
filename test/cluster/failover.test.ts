import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../support/wait.js';
import { measured } from './measure.js';
import { daemonCluster, liveMount, masterNode, measureMasterCrash, missingPrograms, startListener, waitServedEverywhere, withLogs } from './setup.js';

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
    const r = await measureMasterCrash(c, {
      master,
      survivors,
      listeners,
      source,
      kill: async () => {
        await Promise.all((['radiod', 'icecast', 'etcd'] as const).map((p) => c.kill(master, p, 'SIGKILL')));
      },
      electionTimeoutMs: 30_000,
      audioTimeoutMs: 40_000,
      afterElection: async () => {
        await waitServedEverywhere(c, mount, survivors, 40_000);
      },
    });
    measured('master_crash_new_master_ms', r.electedMs);
    measured('master_crash_audio_back_ms', r.audioBackMs);
    measured('master_crash_listener_audio_gap_ms', r.gapMs);
    measured('master_crash_listener_disconnects', r.disconnects);
    measured('master_crash_source_reconnects', r.sourceReconnects);
    assert.notEqual(r.newMaster, master.name);
    assert.equal(r.sourceReconnects, 0, 'the source was held across the failover, never reconnected');
    assert.equal(r.disconnects, 0, 'listeners on surviving nodes keep their connection');
  });
});
