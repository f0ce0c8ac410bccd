import { test } from 'node:test';
import assert from 'node:assert/strict';
import { builtPrograms } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';
import { measured } from './measure.js';
import { configMentions, daemonCluster, liveMount, masterNode, missingPrograms, startListener, withLogs } from './setup.js';

test('etcd quorum loss: listeners keep being served, radioctl fails clearly, recovery when quorum returns', { timeout: 180_000 }, async (t) => {
  const missing = missingPrograms();
  if (missing) return void t.skip(missing);
  const c = await daemonCluster(t);
  await withLogs(c, async () => {
    const master = await masterNode(c);
    const mount = '/quorum.mp3';
    await liveMount(c, mount, c.nodes.find((n) => n !== master)!);
    const listeners = c.nodes.map((n) => startListener(c, `http://${n.ip}/_stream${mount}`));
    await waitFor('listeners receiving', () => listeners.every((l) => l.receiving()), { timeoutMs: 20_000 });

    // Two of three members die; the master's own member is one of them.
    const dead = [master, c.nodes.find((n) => n !== master)!];
    const t0 = Date.now();
    for (const n of dead) await c.kill(n, 'etcd');
    assert.equal(await c.etcdWritable(), false, 'no quorum');
    // Three lease TTLs without etcd: long enough for every lease and watchdog to run out.
    const windowMs = 3 * c.leaseTtl * 1000;
    await waitFor('the outage window', () => Date.now() - t0 > windowMs, { timeoutMs: windowMs + 5000, intervalMs: 250 });
    const gap = Math.max(...listeners.map((l) => l.maxGapSince(t0)));
    const disconnects = listeners.reduce((a, l) => a + l.disconnects, 0);
    measured('quorum_loss_listener_max_gap_ms', gap);
    measured('quorum_loss_listener_disconnects', disconnects);
    // Checked at the end, so that the radioctl and recovery checks run even when this fails.
    const audioDuringOutage = listeners.every((l) => l.receiving(2000));
    assert.equal(disconnects, 0, 'listeners keep their connections without quorum');
    // A new listener is still answered (redirect or stream) from the last known state.
    const front = c.nodes.find((n) => !dead.includes(n))!;
    assert.ok([200, 302].includes(await c.httpStatus(front, mount)), 'a new listener request is answered without quorum');

    if (builtPrograms().radioctl) {
      const t1 = Date.now();
      const r = await c.radioctl(['create-mount', '/during-outage.mp3'], { timeoutMs: 30_000 });
      measured('quorum_loss_radioctl_fail_ms', Date.now() - t1);
      assert.notEqual(r.code, 0, 'create-mount must fail without quorum');
      const err = r.stderr.trim();
      assert.equal(err.split('\n').length, 1, `one-line error, got: ${err}`);
      assert.match(err, /etcd/i);
    } else {
      t.diagnostic('radioctl not built: its failure check was not run');
    }

    const t2 = Date.now();
    for (const n of dead) await c.start(n, 'etcd');
    await c.waitEtcdHealthy(c.nodes, 20_000);
    measured('quorum_back_etcd_healthy_ms', Date.now() - t2);
    const created = await waitFor('a mount can be created again', async () => {
      try {
        return await c.createMount('/after-outage.mp3');
      } catch {
        return undefined;
      }
    }, { timeoutMs: 20_000, intervalMs: 250 });
    await waitFor('new mount in every icecast.xml', () => c.nodes.every((n) => configMentions(n, created.path)), {
      timeoutMs: 20_000,
      intervalMs: 50,
    });
    measured('quorum_back_to_mount_everywhere_ms', Date.now() - t2);
    assert.ok(await masterNode(c));
    await waitFor('listeners receiving after recovery', () => listeners.every((l) => l.lastDataAt > t2 && l.receiving()), {
      timeoutMs: 30_000,
    });
    measured('quorum_back_to_audio_ms', Date.now() - t2);
    assert.ok(audioDuringOutage, `listeners still receive audio without quorum (longest gap ${gap} ms)`);
  });
});
