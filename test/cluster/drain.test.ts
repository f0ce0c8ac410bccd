import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Cluster, ClusterNode } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';
import { MASTER_ELECTION_PREFIX, TRANSCODER_ELECTION_ROOT, ELECTION_ROOT } from '../../src/coordination/keys.js';
import { daemonCluster, liveMount, masterNode, missingPrograms, startListener, withLogs } from './setup.js';
import { transcoderPids } from './transcoder-pids.js';
import { measured } from './measure.js';

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

/** The elections each node is a candidate in now: 'master' or the transcoder election's key prefix. */
async function candidacies(c: Cluster): Promise<Map<string, Set<string>>> {
  const r = await c.etcdctl(['get', '--prefix', ELECTION_ROOT, '-w', 'json']);
  if (r.code !== 0) throw new Error(`reading the elections failed: ${r.stderr.trim()}`);
  const byNode = new Map<string, Set<string>>();
  for (const kv of (JSON.parse(r.stdout) as { kvs?: { key: string; value: string }[] }).kvs ?? []) {
    const key = Buffer.from(kv.key, 'base64').toString('utf8');
    const election = key.startsWith(MASTER_ELECTION_PREFIX) ? 'master' : key.startsWith(TRANSCODER_ELECTION_ROOT) ? key.slice(0, key.lastIndexOf('/')) : undefined;
    if (!election) continue;
    const name = (JSON.parse(Buffer.from(kv.value, 'base64').toString('utf8')) as { name?: string }).name ?? '';
    byNode.set(name, (byNode.get(name) ?? new Set()).add(election));
  }
  return byNode;
}

/** When the node's Icecast started its current source of `mount`, if it has one. */
async function sourceSince(c: Cluster, node: ClusterNode, mount: string): Promise<string | undefined> {
  const stats = await c.icecastStatus(node);
  const sources = stats?.source === undefined ? [] : Array.isArray(stats.source) ? stats.source : [stats.source];
  return sources.find((s) => s.listenurl.endsWith(mount))?.stream_start_iso8601;
}

const LOW = '/low.mp3';

test('a drained node hands over the master role and its transcoders; undrained it campaigns again', { timeout: 240_000 }, async (t) => {
  const missing = missingPrograms(['radiod', 'redirectord', 'radioctl']);
  if (missing) return void t.skip(missing);
  const c = await daemonCluster(t);
  // Never two transcoders for the mount at once, sampled for the whole test.
  const overlaps: string[] = [];
  const sampler = setInterval(() => {
    const running = transcoderPids(c, `autoradio-transcoder=${LOW}`);
    if (running.size > 1) overlaps.push(JSON.stringify([...running]));
  }, 200);
  t.after(() => clearInterval(sampler));
  await withLogs(c, async () => {
    const master = await masterNode(c);
    const others = c.nodes.filter((n) => n !== master);
    const { source } = await liveMount(c, '/main.mp3', others[0]!);
    const created = await c.radioctl(['create-transcoding-mount', LOW, '--source', '/main.mp3', '--codec', 'mp3', '--bitrate', '64']);
    assert.equal(created.code, 0, `create-transcoding-mount failed: ${created.stderr || created.stdout}`);
    await waitFor(`a liquidsoap for ${LOW}`, () => transcoderPids(c, `autoradio-transcoder=${LOW}`).size === 1, { timeoutMs: 30_000, intervalMs: 100 });
    const relayListener = startListener(c, `http://${others[1]!.ip}/_stream/main.mp3`);
    const otherListener = startListener(c, `http://${others[0]!.ip}/_stream/main.mp3`);
    const masterListener = startListener(c, `http://${master.ip}/_stream/main.mp3`);
    await waitFor('every listener receiving', () => relayListener.receiving() && otherListener.receiving() && masterListener.receiving(), {
      timeoutMs: 20_000,
    });
    const sourceStarts = source.starts;

    // Drain the master: another node takes over as on a planned stop.
    const d = await c.radioctl(['drain', master.name]);
    assert.equal(d.code, 0, `radioctl drain failed: ${d.stderr || d.stdout}`);
    assert.match(d.stdout, /master role and transcoders move to/);
    const tDrain = Date.now();
    const next = await waitFor('another master', async () => {
      const m = await c.master();
      return m && m.name !== master.name ? m.name : undefined;
    }, { timeoutMs: 10_000, intervalMs: 50 });
    await waitFor(`the source on the new master ${next}`, async () => (await sourceSince(c, c.node(next), '/main.mp3')) !== undefined, {
      timeoutMs: 10_000, intervalMs: 100,
    });
    await waitFor(`${master.name} out of every election`, async () => (await candidacies(c)).get(master.name) === undefined, {
      timeoutMs: 10_000, intervalMs: 100,
    });
    await waitFor(`no liquidsoap on ${master.name}`, () => !transcoderPids(c, `autoradio-transcoder=${LOW}`).has(master.name), { timeoutMs: 10_000 });
    const relayBytes = relayListener.bytes;
    await waitFor('the listener on another node keeps receiving', () => relayListener.bytes > relayBytes + 16_000, { timeoutMs: 10_000 });
    const masterBytes = masterListener.bytes;
    await waitFor('the listener on the drained node keeps receiving', () => masterListener.bytes > masterBytes + 16_000, { timeoutMs: 10_000 });
    t.diagnostic(`master ${master.name} -> ${next}; longest silence: on a relay ${relayListener.maxGapSince(tDrain)} ms, on the drained node ${
      masterListener.maxGapSince(tDrain)} ms; listener disconnects ${relayListener.disconnects}/${masterListener.disconnects}; source restarts ${source.starts - sourceStarts}`);
    // One of the two other nodes is the new master, the other stays a relay.
    const byRole = (n: ClusterNode) => (n.name === next ? 'new_master' : 'relay');
    measured(`drain_master_silence_${byRole(others[1]!)}_ms`, relayListener.maxGapSince(tDrain));
    measured(`drain_master_silence_${byRole(others[0]!)}_ms`, otherListener.maxGapSince(tDrain));
    measured('drain_master_silence_drained_ms', masterListener.maxGapSince(tDrain));
    // The drained node's Icecast has nothing for the mount until its relay starts (about 2 s
    // after its reload): its listeners' feed takes the new master's audio meanwhile (the bridge).
    assert.ok(masterListener.maxGapSince(tDrain) < 1500, `${masterListener.maxGapSince(tDrain)} ms of silence on the drained node`);
    assert.equal(source.starts, sourceStarts, 'the source client, held by the front door, never had to reconnect');
    assert.equal(relayListener.disconnects, 0, 'the listener on another node stayed connected');
    assert.equal(otherListener.disconnects, 0, 'the listener on the third node stayed connected');
    assert.equal(masterListener.disconnects, 0, 'the listener on the drained node stayed connected');
    assert.notEqual((await c.master())?.name, master.name, 'the drained node did not become master again');

    // Undrain: the node is a candidate again for master and for the transcoder.
    const u = await c.radioctl(['undrain', master.name]);
    assert.equal(u.code, 0, `radioctl undrain failed: ${u.stderr || u.stdout}`);
    await waitFor(`${master.name} a candidate again`, async () => {
      const mine = (await candidacies(c)).get(master.name);
      return mine?.has('master') === true && [...mine].some((e) => e.startsWith(TRANSCODER_ELECTION_ROOT));
    }, { timeoutMs: 15_000, intervalMs: 200 });

    // Drain the node running the transcoder: its liquidsoap moves, and the new one feeds the master.
    const owner = c.node([...transcoderPids(c, `autoradio-transcoder=${LOW}`).keys()][0]!);
    const currentMaster = await masterNode(c);
    const lowBefore = await sourceSince(c, currentMaster, LOW);
    const d2 = await c.radioctl(['--json', 'drain', owner.name]);
    assert.equal(d2.code, 0, `radioctl drain failed: ${d2.stderr || d2.stdout}`);
    assert.equal((JSON.parse(d2.stdout) as { handsOver: boolean }).handsOver, true);
    const successor = await waitFor('the transcoder on another node', () => [...transcoderPids(c, `autoradio-transcoder=${LOW}`).keys()].find((n) => n !== owner.name), {
      timeoutMs: 15_000, intervalMs: 100,
    });
    const masterNow = await masterNode(c);
    await waitFor(`a new ${LOW} source on ${masterNow.name}`, async () => {
      const since = await sourceSince(c, masterNow, LOW);
      return since !== undefined && (since !== lowBefore || masterNow !== currentMaster);
    }, { timeoutMs: 30_000, intervalMs: 200 });
    t.diagnostic(`transcoder ${owner.name} -> ${successor}`);
    assert.deepEqual(overlaps, [], 'two nodes ran a transcoder for the mount at once');
    assert.equal((await c.radioctl(['undrain', owner.name])).code, 0);
  });
});
