import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cluster, ClusterNode } from '../support/cluster.js';
import { processAlive, run } from '../support/netns.js';
import { transcoderPids } from './transcoder-pids.js';
import { waitFor } from '../support/wait.js';
import { measured } from './measure.js';
import { daemonCluster, liveMount, masterNode, missingPrograms, withLogs } from './setup.js';

/**
 * Issue 7: a transcoded mount survives the crash of the node running its transcoder. One
 * liquidsoap per transcoded mount in the whole cluster; when its node's radiod dies (kill -9),
 * liquidsoap dies with it (parent-death signal), another node wins the mount's election
 * after the lease expires, starts liquidsoap, and the mount plays again everywhere.
 */

const LOW = '/low.mp3';
const LABEL = `autoradio-transcoder=${LOW}`;

interface Probe {
  node: string;
  status: number;
  codec: string;
  bitRate: number;
  bytes: number;
}

/**
 * Captures `seconds` of a node's `/_stream` URL from the client namespace and probes the bytes
 * with ffprobe. curl -f: an error page (mount not there yet) is no audio.
 */
async function probeStream(c: Cluster, node: ClusterNode, path: string, dir: string, seconds = 2): Promise<Probe> {
  const file = join(dir, `capture-${node.name}-${Date.now()}.mp3`);
  const r = await c.execResult(
    'client',
    ['curl', '-sf', '--max-time', String(seconds), '-w', '%{http_code}', '-o', file, `http://${node.ip}/_stream${path}`],
    { timeoutMs: seconds * 1000 + 3000 },
  );
  const probe: Probe = { node: node.name, status: Number(r.stdout.trim()) || 0, codec: '', bitRate: 0, bytes: 0 };
  try {
    probe.bytes = statSync(file).size;
  } catch {
    return probe;
  }
  const p = await run(['ffprobe', '-v', 'error', '-show_entries', 'stream=codec_name,bit_rate', '-of', 'json', file], { timeoutMs: 10_000 });
  rmSync(file, { force: true });
  try {
    const s = (JSON.parse(p.stdout) as { streams?: { codec_name?: string; bit_rate?: string }[] }).streams?.[0];
    probe.codec = s?.codec_name ?? '';
    probe.bitRate = Number(s?.bit_rate ?? 0);
  } catch {
    // not media
  }
  return probe;
}

const isLowQualityAudio = (p: Probe): boolean =>
  p.status === 200 && p.codec === 'mp3' && p.bitRate >= 56_000 && p.bitRate <= 72_000 && p.bytes > 4000;

/**
 * Probes the nodes (in parallel) until one of them serves ~64 kbit/s MP3 on `path`; also says
 * how many rounds found no such audio anywhere.
 */
/** When the master's Icecast started its current source of the transcoded mount. */
async function lowStreamStart(c: Cluster, master: ClusterNode): Promise<string | undefined> {
  const stats = await c.icecastStatus(master);
  const sources = stats?.source === undefined ? [] : Array.isArray(stats.source) ? stats.source : [stats.source];
  return sources.find((s) => s.listenurl.endsWith(LOW))?.stream_start_iso8601;
}

async function waitLowAudio(
  c: Cluster,
  nodes: readonly ClusterNode[],
  path: string,
  dir: string,
  timeoutMs: number,
  what: string,
): Promise<{ probe: Probe; silentRounds: number }> {
  let last: Probe[] = [];
  let silentRounds = 0;
  try {
    const probe = await waitFor(what, async () => {
      last = await Promise.all(nodes.map((n) => probeStream(c, n, path, dir)));
      const ok = last.find(isLowQualityAudio);
      if (!ok) silentRounds += 1;
      return ok;
    }, { timeoutMs, intervalMs: 100 });
    return { probe, silentRounds };
  } catch (err) {
    throw new Error(`${(err as Error).message}; last probes: ${JSON.stringify(last)}`);
  }
}

test('a transcoded mount survives the crash of the node running its transcoder', { timeout: 180_000 }, async (t) => {
  const missing = missingPrograms(['radiod', 'redirectord', 'radioctl']);
  if (missing) return void t.skip(missing);
  const c = await daemonCluster(t);
  const dir = mkdtempSync(join(tmpdir(), 'autoradio-transcoder-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));

  // Never two transcoders for the mount at once, sampled for the whole test.
  const overlaps: string[] = [];
  let samples = 0;
  const sampler = setInterval(() => {
    const running = transcoderPids(c, LABEL);
    samples += 1;
    if (running.size > 1) overlaps.push(`${new Date().toISOString()} ${JSON.stringify([...running])}`);
  }, 200);
  t.after(() => clearInterval(sampler));

  await withLogs(c, async () => {
    const master = await masterNode(c);
    const front = c.nodes.find((n) => n !== master)!;
    await liveMount(c, '/main.mp3', front);

    const r = await c.radioctl(['create-transcoding-mount', LOW, '--source', '/main.mp3', '--codec', 'mp3', '--bitrate', '64']);
    assert.equal(r.code, 0, `radioctl create-transcoding-mount failed: ${r.stderr || r.stdout}`);
    const tCreated = Date.now();

    const first = await waitLowAudio(c, c.nodes, LOW, dir, 45_000, `${LOW} playing as ~64 kbit/s MP3 on some node`);
    measured('transcoded_mount_first_audio_ms', Date.now() - tCreated);
    t.diagnostic(`before the crash: ${JSON.stringify(first.probe)}`);

    const running = transcoderPids(c, LABEL);
    assert.equal(running.size, 1, `exactly one node runs the transcoder: ${JSON.stringify([...running])}`);
    const [ownerName, ownerPids] = [...running][0]!;
    const owner = c.node(ownerName);
    const masterBefore = (await masterNode(c)).name;
    const ownerWasMaster = masterBefore === owner.name;
    measured('transcoder_case', ownerWasMaster ? 'transcoder_on_master' : 'transcoder_on_other_node');
    const survivors = c.nodes.filter((n) => n !== owner);
    const lowStartBefore = await lowStreamStart(c, c.node(masterBefore));

    const t0 = Date.now();
    await c.kill(owner, 'radiod', 'SIGKILL');
    // The parent-death signal takes liquidsoap down with radiod.
    await waitFor(`liquidsoap (pids ${ownerPids.join(',')}) on ${owner.name} gone with radiod`, () => ownerPids.every((p) => !processAlive(p)), {
      timeoutMs: 3000,
      intervalMs: 20,
    });
    const orphanGoneMs = Date.now() - t0;

    const leaseTtlMs = c.leaseTtl * 1000;
    let revivedOnOwner = false;
    const next = await waitFor('another node running the transcoder', () => {
      const now = transcoderPids(c, LABEL);
      if (now.has(owner.name)) revivedOnOwner = true;
      return [...now.keys()].find((n) => n !== owner.name);
    }, { timeoutMs: leaseTtlMs + 10_000, intervalMs: 100 });
    const takeoverMs = Date.now() - t0;

    // The new transcoder's audio: a new source of the mount on the (possibly new) master. Until
    // then a listener joining a relaying node may still get Icecast's burst of the last audio:
    // the front door keeps the relays open across an upstream's absence.
    const masterAfter = (await masterNode(c, survivors)).name;
    const lowStartAfter = await waitFor(`a new ${LOW} source on ${masterAfter}`, async () => {
      const start = await lowStreamStart(c, c.node(masterAfter));
      return start !== undefined && (start !== lowStartBefore || masterAfter !== masterBefore) ? start : undefined;
    }, { timeoutMs: 40_000, intervalMs: 200 });
    const back = await waitLowAudio(c, survivors, LOW, dir, 40_000, `${LOW} playing again on a surviving node`);
    const audioBackMs = Date.now() - t0;
    t.diagnostic(`after the crash: ${JSON.stringify(back.probe)}; new source since ${lowStartAfter}`);

    measured('transcoder_orphan_gone_ms', orphanGoneMs);
    measured('transcoder_takeover_ms', takeoverMs);
    measured('low_mount_audio_back_ms', audioBackMs);
    measured('transcoder_nodes', `${owner.name}->${next} master ${masterBefore}->${masterAfter}`);
    measured('transcoder_overlap_samples', `${overlaps.length}/${samples}`);
    assert.ok(!revivedOnOwner, `a transcoder ran again on ${owner.name}, whose radiod is dead`);
    assert.ok(takeoverMs <= leaseTtlMs + 10_000, `takeover took ${takeoverMs} ms`);
    if (ownerWasMaster) assert.notEqual(masterAfter, owner.name, 'the master role moved off the node whose radiod died');
    assert.ok(samples > 50, `only ${samples} samples of the transcoder set`);
    assert.deepEqual(overlaps, [], 'two nodes ran a transcoder for the mount at once');
  });
});
