import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../support/wait.js';
import { measured, percentile } from './measure.js';
import { configMentions, daemonCluster, missingPrograms, startSource, waitServedEverywhere, withLogs } from './setup.js';

test('propagation: a new mount reaches every node (config, then served with a source)', { timeout: 180_000 }, async (t) => {
  const missing = missingPrograms();
  if (missing) return void t.skip(missing);
  const c = await daemonCluster(t);
  await withLogs(c, async () => {
    const configMs: number[] = [];
    const servedMs: number[] = [];
    for (let i = 1; i <= 4; i++) {
      const mount = `/prop${i}.mp3`;
      const t0 = Date.now();
      const creds = await c.createMount(mount);
      await waitFor(`${mount} in every icecast.xml`, () => c.nodes.every((n) => configMentions(n, mount)), {
        timeoutMs: 20_000,
        intervalMs: 20,
      });
      configMs.push(Date.now() - t0);
      const source = startSource(c, c.nodes[i % c.nodes.length]!, mount, creds);
      await waitServedEverywhere(c, mount, c.nodes, 40_000);
      servedMs.push(Date.now() - t0);
      await source.stop();
    }
    measured('mount_config_propagation_p50_ms', percentile(configMs, 50));
    measured('mount_config_propagation_p99_ms', percentile(configMs, 99));
    measured('mount_served_everywhere_p50_ms', percentile(servedMs, 50));
    measured('mount_served_everywhere_p99_ms', percentile(servedMs, 99));
    assert.ok(Math.max(...configMs) < 20_000);
  });
});
