import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { Etcd3 } from 'etcd3';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { icecastSources, startIcecast, type TestIcecast } from '../support/icecast.js';
import { startProcess, type Managed } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { connectEtcd } from '../../src/coordination/client.js';
import { ClusterView } from '../../src/coordination/cluster-view.js';
import { Elector } from '../../src/coordination/elector.js';
import { fencingBudget } from '../../src/coordination/fencing-budget.js';
import { MASTER_ELECTION_PREFIX, mountKey, transcoderElectionPrefix } from '../../src/coordination/keys.js';
import type { Mount } from '../../src/coordination/mount.js';
import { createMetrics } from '../../src/common/metrics.js';
import { TranscoderManager } from '../../src/radiod/transcoder/manager.js';
import { transcoderLabel } from '../../src/radiod/transcoder/process.js';

/**
 * Three transcoder managers (two in this process, one in a child process that gets SIGKILLed)
 * against a real etcd, a real Icecast fed by ffmpeg, and real liquidsoap processes. A sampler
 * checks every 100 ms that at most one liquidsoap serves the mount.
 */
const TTL = 4;
const LOW = '/low.mp3';
const main: Mount = { path: '/main.mp3', username: 'source', password: 'sourcepw1' };
const low: Mount = {
  path: LOW,
  username: 'lowuser',
  password: 'lowpass123',
  transcoding: { source: '/main.mp3', codec: 'mp3', bitrate: 64, samplerate: 22050, channels: 1 },
};

let etcd: TestEtcd | undefined;
let icecast: TestIcecast | undefined;
const managed: Managed[] = [];
const cleanups: (() => Promise<void>)[] = [];
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await Promise.all(managed.map((m) => m.stop('SIGKILL')));
  await icecast?.stop();
  await etcd?.stop();
});

interface Liq {
  pid: number;
  ppid: number;
}

/** Like `pgrep -f`, but reads /proc directly; zombies (empty cmdline) do not count. */
async function liquidsoapsFor(mount: string): Promise<Liq[]> {
  const label = transcoderLabel(mount);
  const found: Liq[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = (await readFile(`/proc/${name}/cmdline`, 'utf8')).split('\0');
      if (!argv.includes(label)) continue;
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z') continue;
      found.push({ pid: Number(name), ppid: Number(fields[1]) });
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

async function icecastMounts(url: string): Promise<string[]> {
  return [...(await icecastSources(url)).keys()];
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve) => execFile(cmd, args, { timeout: 20_000 }, (_err, stdout) => resolve(String(stdout))));
}

/** What a listener gets: a few seconds of the stream, analysed by ffprobe. */
async function probe(url: string, dir: string): Promise<Record<string, string>> {
  const file = join(dir, `capture-${Date.now()}.bin`);
  await run('curl', ['-s', '--max-time', '4', '-o', file, url]);
  const out = await run('ffprobe', ['-v', 'error', '-show_streams', file]);
  await rm(file, { force: true });
  return Object.fromEntries(out.split('\n').filter((l) => l.includes('=')).map((l) => l.split('=', 2) as [string, string]));
}

function quietLog(node: string): Logger {
  return pino({ level: process.env['AUTORADIO_TEST_LOG'] ? 'info' : 'warn', base: { node } }, pino.destination(2));
}

/**
 * A manager in this process, stopped when the test that made it ends (pass or fail), so that no
 * manager of one test campaigns for the mounts of the next.
 */
async function inProcessManager(
  t: TestContext,
  name: string,
  extra: Partial<ConstructorParameters<typeof TranscoderManager>[0]> = {},
): Promise<TranscoderManager> {
  const client = connectEtcd({ etcdUrls: [etcd!.url] });
  const log = quietLog(name);
  const view = new ClusterView(client, log);
  await view.start();
  const elector = new Elector(client, { ttlSeconds: TTL, log });
  elector.start();
  // A private script directory: the default one is named after the node, and another run of
  // this file on the same machine would share (and remove) it.
  const workDir = await mkdtemp(join(tmpdir(), `autoradio-tc-${name}-`));
  t.after(() => rm(workDir, { recursive: true, force: true }));
  const manager = new TranscoderManager({
    workDir,
    elector,
    state: view,
    nodeName: name,
    liquidsoapPath: 'liquidsoap',
    log,
    metrics: createMetrics(undefined, 'radiod', name, () => {}),
    ...extra,
  });
  t.after(async () => {
    await manager.stop();
    await elector.stop();
    await view.stop();
    client.close();
  });
  manager.start();
  return manager;
}

test('one liquidsoap per transcoded mount across managers: failover, handover, edit, delete', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'autoradio-tc-mgr-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const etcdHere = etcd!;
  icecast = await startIcecast({
    extraXml: `<mount><mount-name>${LOW}</mount-name><username>${low.username}</username><password>${low.password}</password></mount>`,
  });
  const feed = startProcess('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-re', '-f', 'lavfi', '-i', 'sine=frequency=440',
    '-c:a', 'libmp3lame', '-b:a', '128k', '-content_type', 'audio/mpeg', '-f', 'mp3',
    `icecast://source:${icecast.sourcePassword}@127.0.0.1:${icecast.port}/main.mp3`,
  ]);
  managed.push(feed);
  const ice = icecast;
  await waitFor('source mount live', async () => (await icecastMounts(ice.url)).includes('/main.mp3'), { timeoutMs: 15_000 });

  const admin = new Etcd3({ hosts: etcdHere.url });
  cleanups.push(async () => admin.close());
  await admin.put(`${MASTER_ELECTION_PREFIX}static`).value(JSON.stringify({ name: 'm1', addresses: ['127.0.0.1'], icecastPort: icecast.port }));
  await admin.put(mountKey(main.path)).value(JSON.stringify(main));
  await admin.put(mountKey(LOW)).value(JSON.stringify(low));

  let maxSeen = 0;
  let violation = '';
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const procs = await liquidsoapsFor(LOW);
      maxSeen = Math.max(maxSeen, procs.length);
      if (procs.length > 1 && !violation) violation = `${new Date().toISOString()}: ${JSON.stringify(procs)}`;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  cleanups.push(async () => {
    sampling = false;
    await sampler;
  });

  // 1. A manager in a child process starts alone, so it wins the mount.
  const child = startProcess(process.execPath, ['--import', 'tsx', 'test/integration/transcoder-manager-child.ts', etcdHere.url, 'c1', String(TTL), dir]);
  managed.push(child);
  const first = await waitFor('liquidsoap under the child manager', async () =>
    (await liquidsoapsFor(LOW)).find((p) => p.ppid === child.child.pid), { timeoutMs: 20_000, intervalMs: 100 });
  await waitFor('transcoded mount live', async () => (await icecastMounts(ice.url)).includes(LOW), { timeoutMs: 60_000, intervalMs: 250 });
  const streams = await probe(`${ice.url}${LOW}`, dir);
  assert.equal(streams['codec_name'], 'mp3');
  assert.equal(streams['bit_rate'], '64000');
  assert.equal(streams['sample_rate'], '22050');
  assert.equal(streams['channels'], '1');

  // 2. Two more managers here; they queue behind the child.
  const a = await inProcessManager(t, 'a1');
  const b = await inProcessManager(t, 'b1');
  await waitFor('three candidates', async () => (await admin.getAll().prefix(transcoderElectionPrefix(LOW)).keys()).length === 3, {
    timeoutMs: 10_000,
  });
  assert.deepEqual(a.running(), []);
  assert.deepEqual(b.running(), []);

  // 3. SIGKILL the child: its liquidsoap dies with it, and one of ours takes over after the TTL.
  const tKill = Date.now();
  child.child.kill('SIGKILL');
  await waitFor('child liquidsoap gone', async () => !(await liquidsoapsFor(LOW)).some((p) => p.pid === first.pid), { timeoutMs: 3000, intervalMs: 20 });
  const orphanGoneMs = Date.now() - tKill;
  const second = await waitFor('a liquidsoap here', async () =>
    (await liquidsoapsFor(LOW)).find((p) => p.ppid === process.pid), { timeoutMs: TTL * 1000 + 8000, intervalMs: 100 });
  const failoverMs = Date.now() - tKill;
  assert.ok(failoverMs < TTL * 1000 + 4000, `failover took ${failoverMs} ms`);
  const holder = a.running().includes(LOW) ? a : b;
  const other = holder === a ? b : a;
  assert.deepEqual(holder.running(), [LOW]);
  assert.deepEqual(other.running(), []);
  const tPlays = Date.now();
  await waitFor('mount plays again', async () => Number((await probe(`${ice.url}${LOW}`, dir))['bit_rate']) === 64000, {
    timeoutMs: 60_000, intervalMs: 500,
  });
  t.diagnostic(`child liquidsoap gone ${orphanGoneMs} ms after SIGKILL; new liquidsoap ${failoverMs} ms after; playing ${Date.now() - tPlays} ms later`);

  // 4. Edit: new parameters restart the transcoder where it runs.
  await admin.put(mountKey(LOW)).value(JSON.stringify({ ...low, transcoding: { ...low.transcoding!, bitrate: 32 } }));
  await waitFor('liquidsoap restarted', async () => {
    const now = await liquidsoapsFor(LOW);
    return now.length === 1 && now[0]!.pid !== second.pid;
  }, { timeoutMs: 10_000, intervalMs: 100 });
  await waitFor('mount plays at the new bitrate', async () => (await probe(`${ice.url}${LOW}`, dir))['bit_rate'] === '32000', {
    timeoutMs: 60_000, intervalMs: 500,
  });
  assert.deepEqual(holder.running(), [LOW]);

  // 5. Graceful stop of the holder: the other takes over within moments.
  const tStop = Date.now();
  await holder.stop();
  await waitFor('the other manager runs it', () => other.running().includes(LOW), { timeoutMs: 5000, intervalMs: 50 });
  const handoverMs = Date.now() - tStop;
  await waitFor('mount plays after the handover', async () => (await icecastMounts(ice.url)).includes(LOW), { timeoutMs: 60_000, intervalMs: 250 });
  t.diagnostic(`graceful handover: ${handoverMs} ms from stop() to the new liquidsoap`);

  // 6. Fencing: etcd stops answering (a partition, as seen from the holder). The election can no
  // longer confirm its lease, so liquidsoap must go within the confirmation window plus the
  // fencing budget, before the lease can expire on the server.
  const runningPid = (await liquidsoapsFor(LOW))[0]!.pid;
  const tFreeze = Date.now();
  etcdHere.freeze();
  try {
    await waitFor('liquidsoap fenced off', async () => (await liquidsoapsFor(LOW)).length === 0, { timeoutMs: TTL * 1000 + 3000, intervalMs: 50 });
  } finally {
    etcdHere.thaw();
  }
  const fencedMs = Date.now() - tFreeze;
  assert.ok(fencedMs < fencingBudget(TTL).fencedByMs, `fenced after ${fencedMs} ms`);
  // The process is gone from /proc a moment before the manager has handled its exit. The lease
  // outlived the freeze (it is shorter than the TTL), so the manager may already lead again and
  // run a new liquidsoap by then: either way the old one is no longer counted as running.
  await waitFor('the manager saw its liquidsoap end', async () =>
    other.running().length === 0 || (await liquidsoapsFor(LOW)).some((p) => p.pid !== runningPid), { timeoutMs: 2000, intervalMs: 20 });
  // Back in touch: it campaigns again and runs a new liquidsoap.
  await waitFor('re-elected after etcd answers again', async () => {
    const now = await liquidsoapsFor(LOW);
    return now.length === 1 && now[0]!.pid !== runningPid;
  }, { timeoutMs: TTL * 1000 + 10_000, intervalMs: 100 });
  t.diagnostic(`fencing: liquidsoap stopped ${fencedMs} ms after etcd froze`);

  // 7. Delete: liquidsoap stops everywhere.
  await admin.delete().key(mountKey(LOW));
  await waitFor('no liquidsoap left', async () => (await liquidsoapsFor(LOW)).length === 0 && other.running().length === 0, {
    timeoutMs: 10_000, intervalMs: 100,
  });
  await waitFor('candidacies resigned', async () => (await admin.getAll().prefix(transcoderElectionPrefix(LOW)).keys()).length === 0, {
    timeoutMs: 5000,
  });

  sampling = false;
  await sampler;
  assert.equal(violation, '', `two liquidsoap processes for one mount at once: ${violation}`);
  assert.equal(maxSeen, 1);
});

test('a node where liquidsoap keeps failing yields the mount to another node', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'autoradio-tc-yield-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  // Stands in for a working liquidsoap: it just runs (nothing here needs its audio); no exec,
  // so its command line keeps the mount's label.
  const working = join(dir, 'liquidsoap');
  await writeFile(working, '#!/bin/sh\nsleep 1000 & wait\n');
  await chmod(working, 0o755);
  const mount: Mount = { ...low, path: '/crashy.mp3' };
  const admin = new Etcd3({ hosts: etcd!.url });
  cleanups.push(async () => admin.close());
  await admin.put(`${MASTER_ELECTION_PREFIX}static`).value(JSON.stringify({ name: 'm1', addresses: ['127.0.0.1'], icecastPort: 1 }));
  await admin.put(mountKey(mount.path)).value(JSON.stringify(mount));

  const broken = await inProcessManager(t, 'x1', {
    liquidsoapPath: join(dir, 'missing-liquidsoap'),
    backoff: { initialMs: 50, maxMs: 100, resetAfterMs: 60_000 },
  });
  await waitFor('the broken node leads first', () => broken.running().includes(mount.path), { timeoutMs: 10_000 });
  const healthy = await inProcessManager(t, 'y1', { liquidsoapPath: working });
  await waitFor('the healthy node took over', () => healthy.running().includes(mount.path), { timeoutMs: 15_000, intervalMs: 50 });
  assert.deepEqual(broken.running(), []);
  const procs = await liquidsoapsFor(mount.path);
  assert.equal(procs.length, 1);
  assert.equal(procs[0]!.ppid, process.pid);

  await admin.delete().key(mountKey(mount.path));
  await waitFor('stopped after delete', async () => healthy.running().length === 0 && (await liquidsoapsFor(mount.path)).length === 0, {
    timeoutMs: 10_000,
  });
});
