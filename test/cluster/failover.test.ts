import { test } from 'node:test';
import assert from 'node:assert/strict';
import { measured } from './measure.js';
import { daemonCluster, missingPrograms, withLogs } from './setup.js';
import { failoverRound, type FaultKind } from './failover-rounds.js';

/**
 * Every way of losing the master, with a source entering through a surviving node's front door
 * and a `/_stream` listener on each surviving node. Safety is asserted, speed only recorded
 * (bench/failover.ts measures the distributions): at no sampled instant do two nodes take the
 * mount's source (asked from outside as Icecast asks, every 200 ms), no listener is
 * disconnected, the source client is held rather than cut, and the mount survives.
 */
const ROUNDS: readonly FaultKind[] = ['node-kill', 'partition', 'radiod-kill', 'icecast-crash', 'planned-stop', 'node-kill'];

test('master loss of every kind: one master at a time, listeners kept, the source held', { timeout: 600_000 }, async (t) => {
  const missing = missingPrograms(['radiod', 'redirectord', 'radioctl']);
  if (missing) return void t.skip(missing);
  const c = await daemonCluster(t);
  await withLogs(c, async () => {
    const creds = await c.createMount('/live.mp3');
    for (const [i, kind] of ROUNDS.entries()) {
      const r = await failoverRound(c, kind, creds.path, creds);
      measured(`failover_${i}_${kind}`, JSON.stringify({ elected: r.electedMs, audioBack: r.audioBackMs, silence: r.silenceMs, lost: r.lostMs, from: r.oldMaster, to: r.newMaster }));
      assert.notEqual(r.newMaster, r.oldMaster);
      assert.ok(r.samples >= 5, `${kind}: only ${r.samples} safety samples`);
      assert.ok(r.maxAccepting <= 1, `${kind}: ${r.maxAccepting} nodes would have taken the source at once`);
      assert.equal(r.disconnects, 0, `${kind}: listeners on surviving nodes keep their connection`);
      assert.equal(r.sourceRestarts, 0, `${kind}: the source client was held across the failover, never cut`);
      const mounts = await c.radioctl(['list-mounts']);
      assert.ok(mounts.stdout.includes(creds.path), `${kind}: the mount is still there: ${mounts.stdout}`);
    }
  });
});
