import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { launchIcecast, makeIcecastDir, sourcePutStatus, type TestIcecast } from '../support/icecast.js';
import { freePort } from '../support/ports.js';
import { startProcess, type Managed } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { MASTER_ELECTION_PREFIX, ICECAST_SECRETS_KEY, forgottenKey, mountKey, nodeKey } from '../../src/coordination/keys.js';
import type { Mount } from '../../src/coordination/mount.js';
import type { NodeStatus } from '../../src/coordination/node-status.js';
import { listen } from '../support/listen.js';
import { assertConventionalExposition } from '../support/exposition.js';
import { LOAD_MIN_INTERVAL_MS } from '../../src/coordination/status-publish-policy.js';
import { parseAdminStats } from '../../src/radiod/icecast/stats.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * Three radiod "nodes" on loopback, each with its own Icecast (run as icecast2 on the config
 * radiod writes), one etcd, ffmpeg as the source and fetch() as listeners.
 */

const ROOT = new URL('../..', import.meta.url).pathname;
const RADIOD = join(ROOT, 'dist/radiod/main.js');
const LEASE_TTL = 4;

interface Node {
  name: string;
  port: number;
  dir: string;
  configPath: string;
  metricsPort: number;
  radiod: Managed;
  icecast?: TestIcecast;
  url: string;
}

let etcd: TestEtcd;
let client: Etcd3;
const nodes: Node[] = [];
const sources: Managed[] = [];
let adminPassword = '';

const live: Mount = { path: '/live.mp3', username: 'source', password: 'livepass-1234' };

function startRadiod(n: Omit<Node, 'radiod' | 'url'>): Managed {
  return startProcess(
    'node',
    [
      RADIOD,
      '--etcd-urls', etcd.url,
      '--domain', 'radio.test',
      '--name', n.name,
      '--ip', '127.0.0.1',
      '--metrics-listen', `127.0.0.1:${n.metricsPort}`,
      '--icecast-config', n.configPath,
      '--icecast-port', String(n.port),
      '--icecast-bind', '127.0.0.1',
      '--icecast-logdir', join(n.dir, 'log'),
      '--icecast-pidfile', join(n.dir, 'icecast.pid'),
      '--lease-ttl', String(LEASE_TTL),
      '--status-interval', '500',
      '--max-listeners', '50',
      // No front door here: the relays pull from the master's Icecast itself.
      '--relay-via', 'direct',
      '--log-level', 'debug',
    ],
    { cwd: ROOT },
  );
}

async function startIcecastFor(n: Node): Promise<void> {
  n.icecast = await launchIcecast({
    host: '127.0.0.1',
    port: n.port,
    dir: n.dir,
    configPath: n.configPath,
    sourcePassword: 'unused',
    adminPassword,
  });
}

async function currentMaster(): Promise<string | undefined> {
  const res = await client.getAll().prefix(MASTER_ELECTION_PREFIX).sort('Create', 'Ascend').limit(1).exec();
  const v = res.kvs[0]?.value.toString();
  return v ? (JSON.parse(v) as { name: string }).name : undefined;
}

async function config(n: Node): Promise<string> {
  return readFile(n.configPath, 'utf8').catch(() => '');
}

/** The node's config serves the mount: as master (source credentials) or as relay of `master`. */
function servesAs(xml: string, path: string, role: 'master' | { relayOfPort: number }): boolean {
  if (role === 'master') return xml.includes(`<mount-name>${path}</mount-name>`) && xml.includes('<password>livepass-1234</password>');
  return (
    xml.includes(`<local-mount>/_relay${path}</local-mount>`) && xml.includes(`<port>${role.relayOfPort}</port>`) && !xml.includes('livepass-1234')
  );
}

function startSource(port: number, password: string, mount = live.path): Managed {
  const p = startProcess('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-re',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-c:a', 'libmp3lame', '-b:a', '64k', '-content_type', 'audio/mpeg', '-f', 'mp3',
    `icecast://source:${password}@127.0.0.1:${port}${mount}`,
  ]);
  sources.push(p);
  return p;
}


function sourceAuth(port: number, password: string, mount = live.path): Promise<string> {
  return sourcePutStatus(port, password, mount);
}

async function nodeStatus(name: string): Promise<NodeStatus | undefined> {
  const v = await client.get(nodeKey(name)).string();
  return v ? (JSON.parse(v) as NodeStatus) : undefined;
}

before(async () => {
  assert.ok(existsSync(RADIOD), `${RADIOD} is missing: build with npx tsc -p tsconfig.json first`);
  etcd = await startEtcd();
  client = new Etcd3({ hosts: etcd.url });
  for (let i = 1; i <= 3; i++) {
    const dir = await makeIcecastDir();
    const port = await freePort();
    const spec = { name: `node${i}`, port, metricsPort: await freePort(), dir, configPath: join(dir, 'icecast.xml') };
    nodes.push({ ...spec, radiod: startRadiod(spec), url: `http://127.0.0.1:${port}` });
  }
  // radiod writes each config first; Icecast (as Debian's service would) starts on it.
  for (const n of nodes) {
    await waitFor(`${n.name} config`, async () => (await config(n)).includes('<icecast>'), { timeoutMs: 15_000 });
  }
  const secrets = JSON.parse((await client.get(ICECAST_SECRETS_KEY).string())!) as { adminPassword: string };
  adminPassword = secrets.adminPassword;
  await Promise.all(nodes.map((n) => startIcecastFor(n)));
});

after(async () => {
  // RADIOD_TEST_LOGS=1 prints every radiod's last log lines (debugging aid).
  if (process.env['RADIOD_TEST_LOGS']) console.log(dumpOnFailure(200));
  await Promise.all(sources.map((s) => s.stop('SIGKILL')));
  await Promise.all(nodes.map((n) => n.radiod.stop('SIGTERM', 5000)));
  await Promise.all(nodes.map((n) => n.icecast?.stop()));
  client?.close();
  await etcd?.stop();
});

function dumpOnFailure(lines = 25): string {
  return nodes.map((n) => `--- ${n.name} radiod\n${n.radiod.output.slice(-lines).join('\n')}`).join('\n');
}

let masterNode: Node;
let others: Node[];

test('one master is elected and every node publishes its status', async () => {
  const name = await waitFor('a master', currentMaster, { timeoutMs: 15_000 });
  masterNode = nodes.find((n) => n.name === name)!;
  others = nodes.filter((n) => n !== masterNode);
  for (const n of nodes) {
    const st = await waitFor(`${n.name} status with icecastOk`, async () => {
      const s = await nodeStatus(n.name);
      return s?.icecastOk ? s : undefined;
    });
    assert.equal(st.icecastPort, n.port);
    assert.deepEqual(st.addresses, ['127.0.0.1']);
    assert.equal(st.maxListeners, 50);
  }
  // Every node campaigns once its Icecast answers; the first one leads, the others queue.
  await waitFor('three candidates', async () => (await client.getAll().prefix(MASTER_ELECTION_PREFIX).keys()).length === 3);
  assert.equal(await currentMaster(), name);
});

test('a running radiod removes the forgotten marker radioctl forget-node left for its name', async () => {
  await client.put(forgottenKey('node2')).value(JSON.stringify({ since: new Date().toISOString(), by: 'test' }));
  await client.put(forgottenKey('node9')).value(JSON.stringify({ since: new Date().toISOString(), by: 'test' }));
  await waitFor('node2 no longer forgotten', async () => (await client.get(forgottenKey('node2')).string()) === null, { timeoutMs: 10_000 });
  assert.notEqual(await client.get(forgottenKey('node9')).string(), null, 'another node\'s marker is left alone');
  await client.delete().key(forgottenKey('node9'));
});

test('a new mount reaches every Icecast; the master takes the source, the others relay it', async () => {
  const t0 = Date.now();
  await client.put(mountKey(live.path)).value(JSON.stringify(live));
  await waitFor(
    'configs rendered',
    async () => {
      if (!servesAs(await config(masterNode), live.path, 'master')) return false;
      for (const n of others) if (!servesAs(await config(n), live.path, { relayOfPort: masterNode.port })) return false;
      return true;
    },
    { timeoutMs: 5000, intervalMs: 10 },
  ).catch((err: Error) => assert.fail(`${err.message}\n${dumpOnFailure()}`));
  const propagationMs = Date.now() - t0;
  console.log(`# measured: propagation_ms=${propagationMs}`);
  assert.ok(propagationMs < 1000, `config propagation took ${propagationMs} ms\n${dumpOnFailure(40)}`);

  // Icecast rereads its config up to about a second after the HUP: probe with an empty PUT
  // (200 = accepted, 401 = refused) until the mount's own credentials work.
  // (Icecast holds an accepted PUT open: the probe's start time is when it was accepted.)
  let acceptedAt = 0;
  await waitFor('mount credentials live on the master', async () => {
    const probeAt = Date.now();
    const ok = (await sourceAuth(masterNode.port, live.password)) === '200';
    if (ok) acceptedAt = probeAt;
    return ok;
  }, { timeoutMs: 5000, intervalMs: 50 });
  console.log(`# measured: mount_live_on_master_ms=${acceptedAt - t0}`);
  assert.equal(await sourceAuth(masterNode.port, 'wrong-password'), '401');
  // The mount's credentials do nothing on a non-master: it takes no sources at all.
  for (const n of others) assert.equal(await sourceAuth(n.port, live.password), '401');

  const src = startSource(masterNode.port, live.password);
  const master = masterNode;
  await waitFor('source on the master', () => listen(`${master.url}${live.path}`, 8000, 2000), {
    timeoutMs: 15_000,
    intervalMs: 200,
  }).catch(async (err: Error) => {
    const icecastLog = await readFile(join(master.dir, 'log', 'error.log'), 'utf8').catch(() => '');
    assert.fail(`${err.message}\nffmpeg: ${src.output.join('\n')}\nicecast: ${icecastLog.split('\n').filter((l) => !l.includes('fserve')).slice(-40).join('\n')}\n${dumpOnFailure()}`);
  });
  assert.equal(src.child.exitCode, null, `ffmpeg exited: ${src.output.join('\n')}`);

  // A listener on each non-master node gets audio through its relay.
  for (const n of others) {
    const got = await waitFor(`audio on ${n.name}`, () => listen(`${n.url}${live.path}`, 16_000, 3000), {
      timeoutMs: 15_000,
      intervalMs: 200,
    }).catch(async (err: Error) => {
      const icecastLog = await readFile(join(n.dir, 'log', 'error.log'), 'utf8').catch(() => '');
      return assert.fail(`${err.message}\nicecast: ${icecastLog.split('\n').filter((l) => !l.includes('fserve') && !l.includes('stats/')).slice(-40).join('\n')}`);
    });
    assert.ok(got >= 16_000);
  }

  // The relay node reports its listener through presence.
  const relayNode = others[0]!;
  const ctrl = new AbortController();
  const res = await fetch(`${relayNode.url}${live.path}`, { signal: ctrl.signal });
  assert.equal(res.status, 200);
  try {
    // A listener count is load: published at most every LOAD_MIN_INTERVAL_MS.
    await waitFor(`${relayNode.name} reports a listener`, async () => (await nodeStatus(relayNode.name))?.mounts[live.path] === 1, {
      timeoutMs: LOAD_MIN_INTERVAL_MS + 8000,
      intervalMs: 100,
    });
  } finally {
    ctrl.abort();
  }
});

test('radiod /metrics: the master says the mount is on air, the others export no on-air series; every family by the conventions', async () => {
  const onAir = `autoradio_mount_on_air{mount="${live.path}"}`;
  const text = await waitFor('on air on the master', async () => {
    const t = await (await fetch(`http://127.0.0.1:${masterNode.metricsPort}/metrics`)).text();
    return t.includes(`${onAir} 1\n`) ? t : undefined;
  });
  const families = assertConventionalExposition(text);
  for (const f of ['autoradio_is_master', 'autoradio_icecast_up', 'autoradio_icecast_listeners', 'autoradio_icecast_sent_bytes_per_second']) {
    assert.ok(families.has(f), `${f} missing`);
  }
  assert.match(text, /^autoradio_is_master 1$/m);
  for (const n of others) {
    const t = await (await fetch(`http://127.0.0.1:${n.metricsPort}/metrics`)).text();
    assertConventionalExposition(t);
    assert.doesNotMatch(t, /^autoradio_mount_on_air\{/m, `${n.name} exports on-air`);
    assert.match(t, /^autoradio_is_master 0$/m);
  }
});

/** The master Icecast's own listener count for a mount (relays and pulls included). */
async function icecastListeners(n: Node, path: string): Promise<number | undefined> {
  const res = await fetch(`${n.url}/admin/stats`, {
    headers: { authorization: `Basic ${Buffer.from(`admin:${adminPassword}`).toString('base64')}` },
    signal: AbortSignal.timeout(2000),
  });
  return parseAdminStats(await res.text()).mounts.find((m) => m.mount === path)?.listeners;
}

async function radioctlJson(...args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await execFileAsync('node', [join(ROOT, 'dist/radioctl/main.js'), '--etcd-urls', etcd.url, '--json', ...args]);
  return JSON.parse(stdout) as Record<string, unknown>;
}

test('on air: a source with a title shows on air in the master status and radioctl; a transcoder pull is no listener; off air when it stops', async () => {
  const onair: Mount = { path: '/onair.mp3', username: 'source', password: 'onairpass-1234' };
  const low: Mount = {
    path: '/onair-low.mp3', username: 'source', password: 'lowpass-12345',
    transcoding: { source: onair.path, codec: 'mp3', bitrate: 32, samplerate: 44100, channels: 1 },
  };
  await client.put(mountKey(onair.path)).value(JSON.stringify(onair));
  await client.put(mountKey(low.path)).value(JSON.stringify(low));
  const master = masterNode;
  await waitFor('onair credentials live on the master', async () => (await sourceAuth(master.port, onair.password, onair.path)) === '200', {
    timeoutMs: 8000, intervalMs: 100,
  });
  const connectedAt = Date.now();
  const src = startSource(master.port, onair.password, onair.path);
  try {
    // Two relays (the other nodes) and the transcoder's liquidsoap pull the source mount.
    await waitFor('relays and the transcoder pull /onair.mp3', async () => ((await icecastListeners(master, onair.path)) ?? 0) >= 3, {
      timeoutMs: 30_000, intervalMs: 200,
    }).catch((err: Error) => assert.fail(`${err.message}\nffmpeg: ${src.output.join('\n')}\n${dumpOnFailure(60)}`));
    const title = `Night Jazz ${Date.now()}`;
    const meta = await fetch(`${master.url}/admin/metadata?mount=${onair.path}&mode=updinfo&song=${encodeURIComponent(title)}`, {
      headers: { authorization: `Basic ${Buffer.from(`admin:${adminPassword}`).toString('base64')}` },
    });
    await meta.arrayBuffer();
    assert.equal(meta.status, 200);
    const st = await waitFor('the master publishes the title', async () => {
      const s = await nodeStatus(master.name);
      return s?.onAir?.[onair.path]?.title === title ? s : undefined;
    }, { timeoutMs: 10_000, intervalMs: 100 });
    const entry = st.onAir![onair.path]!;
    assert.ok(Math.abs(entry.since - connectedAt) < 10_000, `since ${entry.since} vs connect ${connectedAt}`);
    assert.equal(entry.contentType, 'audio/mpeg');
    assert.equal(st.mounts[onair.path], undefined, `relays and the transcoder pull counted as listeners: ${JSON.stringify(st.mounts)}`);
    assert.equal(typeof st.version, 'string');
    for (const n of others) assert.equal((await nodeStatus(n.name))?.onAir, undefined, 'only the master reports what is on air');

    const shown = await radioctlJson('show-mount', onair.path);
    assert.equal(shown['onAir'], true);
    assert.equal(shown['title'], title);
    assert.equal(shown['listeners'], 0);
    assert.equal(typeof shown['sourceSince'], 'string');
  } finally {
    await src.stop('SIGKILL');
  }
  await waitFor('off air once the source stops', async () => (await nodeStatus(master.name))?.onAir?.[onair.path] === undefined, {
    timeoutMs: 10_000, intervalMs: 100,
  });
  const status = await radioctlJson('status');
  const mounts = status['mounts'] as { path: string; onAir: boolean; title?: string }[];
  assert.deepEqual(mounts.find((m) => m.path === onair.path), { ...mounts.find((m) => m.path === onair.path), onAir: false });
  assert.equal(mounts.find((m) => m.path === onair.path)!.title, undefined);
  await client.delete().key(mountKey(low.path));
  await client.delete().key(mountKey(onair.path));
});

test('kill -9 of the master (radiod and Icecast): another node takes over and serves again', async () => {
  const old = masterNode;
  const t0 = Date.now();
  old.radiod.child.kill('SIGKILL');
  old.icecast!.process.child.kill('SIGKILL');
  await old.radiod.exited;
  await old.icecast!.process.exited;

  const newName = await waitFor('a new master', async () => {
    const m = await currentMaster();
    return m && m !== old.name ? m : undefined;
  }, { timeoutMs: 15_000, intervalMs: 20 });
  const electedMs = Date.now() - t0;
  const next = nodes.find((n) => n.name === newName)!;
  const survivor = others.find((n) => n !== next)!;
  await waitFor('new master config', async () => servesAs(await config(next), live.path, 'master'), {
    timeoutMs: 5000,
    intervalMs: 10,
  });
  const failoverMs = Date.now() - t0;
  await waitFor('survivor relays from the new master', async () => servesAs(await config(survivor), live.path, { relayOfPort: next.port }), {
    timeoutMs: 5000,
    intervalMs: 10,
  });
  const survivorConfigMs = Date.now() - t0;

  // The source reconnects (as it would through the front door's proxy) until accepted.
  await waitFor('source accepted by the new master', async () => {
    const s = startSource(next.port, live.password);
    const outcome = await Promise.race([s.exited, new Promise((r) => setTimeout(() => r('running'), 1500))]);
    return outcome === 'running';
  }, { timeoutMs: 15_000, intervalMs: 100 });
  await waitFor('audio on the surviving node', () => listen(`${survivor.url}${live.path}`, 16_000, 3000), {
    timeoutMs: 15_000,
    intervalMs: 100,
  });
  const audioMs = Date.now() - t0;
  console.log(
    `# measured: failover_ms=${failoverMs} elected_ms=${electedMs} survivor_config_ms=${survivorConfigMs} audio_on_survivor_ms=${audioMs} lease_ttl_s=${LEASE_TTL}`,
  );
  assert.ok(failoverMs < LEASE_TTL * 1000 * 2 + 1000, `failover took ${failoverMs} ms`);
  // The dead node's presence expired with its lease.
  await waitFor(`${old.name} gone`, async () => (await nodeStatus(old.name)) === undefined, { timeoutMs: LEASE_TTL * 3000 });
  masterNode = next;
  others = [survivor];
});

test('a deleted mount disappears from every Icecast', async () => {
  const t0 = Date.now();
  await client.delete().key(mountKey(live.path));
  await waitFor('configs without the mount', async () => {
    for (const n of [masterNode, ...others]) if ((await config(n)).includes(live.path)) return false;
    return true;
  }, { timeoutMs: 5000, intervalMs: 10 });
  console.log(`# measured: delete_propagation_ms=${Date.now() - t0}`);
  for (const n of [masterNode, ...others]) {
    await waitFor(`${live.path} gone from ${n.name}`, async () => {
      const res = await fetch(`${n.url}${live.path}`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
      await res?.body?.cancel();
      return res?.status === 404;
    }, { timeoutMs: 10_000, intervalMs: 200 });
  }
});

test('SIGTERM: radiod resigns, revokes its lease and exits 0', async () => {
  const n = masterNode;
  const t0 = Date.now();
  n.radiod.child.kill('SIGTERM');
  assert.equal(await n.radiod.exited, 0);
  assert.equal(await nodeStatus(n.name), undefined, 'presence revoked at once');
  const name = await waitFor('the survivor becomes master', async () => {
    const m = await currentMaster();
    return m && m !== n.name ? m : undefined;
  }, { timeoutMs: 5000, intervalMs: 10 });
  console.log(`# measured: graceful_handover_ms=${Date.now() - t0}`);
  assert.equal(name, others[0]!.name);
});
