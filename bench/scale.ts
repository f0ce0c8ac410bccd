import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClusterState, MasterInfo } from '../src/coordination/cluster-state.js';
import { ClusterStateBuilder, type KeyChange } from '../src/coordination/cluster-state-builder.js';
import { mountKey, nodeKey } from '../src/coordination/keys.js';
import type { Mount } from '../src/coordination/mount.js';
import type { NodeStatus } from '../src/coordination/node-status.js';
import { REFRESH_MS } from '../src/coordination/status-publish-policy.js';
import { Balancer } from '../src/redirectord/balancer/balancer.js';
import { DEFAULT_LB_POLICY, parsePolicy } from '../src/redirectord/balancer/policy.js';
import { DEBIAN_ICECAST_PATHS, renderIcecastConfig } from '../src/radiod/icecast/render.js';
import { benchArgs, cpuSeconds, machine, median, numFlag, onCleanup, report, round, rssBytes, runBench, sleep } from './lib/common.js';
import { benchEtcd, benchMount, putMounts, quietLog, startRedirectord } from './lib/fixture.js';
import { wrk } from './lib/wrk.js';
import { measureStatusLoad } from './lib/status-load.js';

/**
 * The cluster at the size the project aims for: 1,000 mounts and 50 nodes polling their
 * Icecast every second against one etcd. Measures the pure decisions (icecast.xml render,
 * balancer choice, cluster-view fold and snapshot), etcd's load in steady state (status
 * revisions and bytes per second, how fast a health change gets out, the database size
 * projected with the README's compaction), and a real redirectord holding that state (RSS,
 * CPU, redirects end to end). Usage:
 *   node --import tsx bench/scale.ts [--quick] [--mounts N] [--nodes N] [--window S] [--etcd-window S]
 */

const args = benchArgs();
const MOUNTS = numFlag(args, '--mounts', 1000);
const NODES = numFlag(args, '--nodes', 50);
const windowS = numFlag(args, '--window', args.quick ? 3 : 20);
/** Whole refresh periods, so that every node's periodic rewrite falls in the window the same number of times. */
const etcdWindowS = numFlag(args, '--etcd-window', (args.quick ? 1 : 4) * (REFRESH_MS / 1000));
/** etcd's default --quota-backend-bytes. */
const ETCD_DEFAULT_QUOTA_BYTES = 2 * 1024 ** 3;
const wrkSeconds = args.quick ? 3 : 10;
const MICRO_MS = args.quick ? 500 : 2000;

/** Runs fn repeatedly for about `ms` and returns microseconds per call (median of 5 batches). */
function timeIt(fn: () => unknown, ms: number): { usPerOp: number; ops: number } {
  const batches: number[] = [];
  let ops = 0;
  for (let b = 0; b < 5; b++) {
    const end = performance.now() + ms / 5;
    let n = 0;
    const t0 = performance.now();
    while (performance.now() < end) {
      fn();
      n++;
    }
    batches.push(((performance.now() - t0) * 1000) / n);
    ops += n;
  }
  return { usPerOp: round(median(batches), 3), ops };
}

function nodeStatus(i: number, mounts: readonly Mount[]): NodeStatus {
  const perMount: Record<string, number> = {};
  let listeners = 0;
  for (const m of mounts) {
    const n = (i * 7 + m.path.length) % 5;
    perMount[m.path] = n;
    listeners += n;
  }
  return {
    name: `node${i}`,
    addresses: [`10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`],
    icecastPort: 8000,
    icecastOk: true,
    mounts: perMount,
    listeners,
    bandwidthKbps: listeners * 128,
    maxListeners: 100_000,
    maxBandwidthKbps: 0,
    reportedAt: Date.now(),
  };
}

runBench('scale', async () => {
  const before = machine();
  const mounts = Array.from({ length: MOUNTS }, (_, i) => benchMount(`/radio${Math.floor(i / 10)}/stream${i % 10}.mp3`));
  const statuses = Array.from({ length: NODES }, (_, i) => nodeStatus(i, mounts));
  const master: MasterInfo = { name: 'node0', addresses: statuses[0]!.addresses, icecastPort: 8000 };
  const state: ClusterState = {
    mounts: new Map(mounts.map((m) => [m.path, m])),
    nodes: new Map(statuses.map((s) => [s.name, s])),
    master,
    revision: '1000',
    connected: true,
    membershipSerial: 1,
  };

  // 1. icecast.xml render (pure), as master and as a relay.
  const nodeSettings = (name: string) => ({
    name,
    addresses: ['10.0.0.2'],
    icecastPort: 8000,
    hostname: `${name}.bench.test`,
    maxListeners: 0,
    paths: DEBIAN_ICECAST_PATHS,
  });
  const secrets = { adminPassword: 'adminadminadmin1', relayPassword: 'relayrelayrelay1' };
  const renderMaster = timeIt(() => renderIcecastConfig({ state, isMaster: true, master, node: nodeSettings('node0'), secrets }), MICRO_MS);
  const renderRelay = timeIt(() => renderIcecastConfig({ state, isMaster: false, master, node: nodeSettings('node1'), secrets }), MICRO_MS);
  const xmlBytes = renderIcecastConfig({ state, isMaster: false, master, node: nodeSettings('node1'), secrets }).length;

  // 2. Balancer.choose over the live nodes (the default policy), as redirectord calls it per request.
  const balancer = new Balancer(parsePolicy(DEFAULT_LB_POLICY));
  const nodeList = [...state.nodes.values()];
  let k = 0;
  const choose = timeIt(() => balancer.choose(nodeList, { clientFamily: 4, mount: mounts[k++ % MOUNTS]!.path }), MICRO_MS);

  // 3. The view's fold: a full reset, then one node's status report applied + a snapshot.
  const changes: KeyChange[] = [
    ...mounts.map((m, i) => ({ type: 'put' as const, key: mountKey(m.path), value: JSON.stringify(m), createRevision: String(i + 1), modRevision: String(i + 1) })),
    ...statuses.map((s, i) => ({ type: 'put' as const, key: nodeKey(s.name), value: JSON.stringify(s), createRevision: String(2000 + i), modRevision: String(2000 + i) })),
  ];
  const builder = new ClusterStateBuilder(() => {});
  const reset = timeIt(() => builder.reset(changes, '3000'), MICRO_MS);
  let rev = 3000;
  const statusValues = statuses.map((s) => JSON.stringify(s));
  const apply = timeIt(() => {
    const i = rev % NODES;
    rev++;
    builder.apply([{ type: 'put', key: nodeKey(`node${i}`), value: statusValues[i]!, createRevision: String(2000 + i), modRevision: String(rev) }], String(rev));
  }, MICRO_MS);
  const snapshot = timeIt(() => builder.snapshot(true), MICRO_MS);

  // 4. etcd: the mounts, then NODES radiod-like publishers in steady state (bench/lib/status-load.ts).
  const { etcd, client } = await benchEtcd();
  const tPut = performance.now();
  await putMounts(client, mounts);
  const putMountsMs = performance.now() - tPut;
  const load = await measureStatusLoad({ client, etcdUrl: etcd.url, mounts, nodes: NODES, windowS: etcdWindowS });
  // Periodic compaction with a 1 h retention keeps at most 1 h of history plus one compaction
  // period (at most the retention again): 2 h of status revisions, on top of the live data.
  const retainedS = 2 * 3600;
  const overhead = Math.max(1, Number.isFinite(load.dbBytesPerValueByte) ? load.dbBytesPerValueByte : 1);
  const projectedDbBytes = load.dbInUseBytes + load.valueBytesPerSec * retainedS * overhead;
  const quotaShare = round((projectedDbBytes / ETCD_DEFAULT_QUOTA_BYTES) * 100, 1);
  const etcdRssMiB = round(rssBytes(etcd.process.child.pid!) / 1048576, 1);

  // 5. A real redirectord with that state, churning: RSS, CPU, and redirects end to end.
  const rd = await startRedirectord({ etcdUrl: etcd.url, readyPath: mounts[0]!.path });
  await sleep(args.quick ? 1000 : 3000);
  const rdCpu0 = cpuSeconds(rd.pid);
  const idleT0 = Date.now();
  await sleep(windowS * 1000);
  const rdIdleCpuPct = round(((cpuSeconds(rd.pid) - rdCpu0) / ((Date.now() - idleT0) / 1000)) * 100, 1);
  const rdRssIdleMiB = round(rssBytes(rd.pid) / 1048576, 1);
  const dir = await mkdtemp(join(tmpdir(), 'autoradio-bench-scale-'));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  const script = join(dir, 'random-mount.lua');
  // wrk picks a random mount per request, so every lookup and every balancer call is real.
  await writeFile(
    script,
    `local paths = {${mounts.map((m) => `"${m.path}"`).join(',')}}\nrequest = function()\n  return wrk.format("GET", paths[math.random(#paths)], {["Connection"] = "close"})\nend\n`,
  );
  const e2e = await wrk({ url: rd.url, seconds: wrkSeconds, connections: 50, script });
  const rdRssAfterMiB = round(rssBytes(rd.pid) / 1048576, 1);
  // One status through the front door (a big JSON page at this size).
  const tStatus = performance.now();
  const statusRes = await fetch(`${rd.url}/status.json`);
  const statusBytes = (await statusRes.arrayBuffer()).byteLength;
  const statusMs = round(performance.now() - tStatus, 1);

  const result = {
    bench: 'scale',
    quick: args.quick,
    mounts: MOUNTS,
    nodes: NODES,
    machineBefore: before,
    machineAfter: machine(),
    render: { masterMs: round(renderMaster.usPerOp / 1000, 3), relayMs: round(renderRelay.usPerOp / 1000, 3), xmlBytes },
    balancerChooseUs: choose.usPerOp,
    clusterView: { resetMs: round(reset.usPerOp / 1000, 3), applyOneStatusUs: apply.usPerOp, snapshotUs: snapshot.usPerOp },
    etcd: {
      putMountsMs: Math.round(putMountsMs),
      rssMiB: etcdRssMiB,
      statusLoad: load,
      projectedDbBytes24h: Math.round(projectedDbBytes),
      projectedQuotaPct: quotaShare,
    },
    redirectord: {
      rssIdleMiB: rdRssIdleMiB,
      rssAfterLoadMiB: rdRssAfterMiB,
      cpuPctWhileNodesReport: rdIdleCpuPct,
      redirects: { rps: e2e.rps, p50Ms: e2e.p50Ms, p99Ms: e2e.p99Ms, badStatus: e2e.badStatus },
      statusJson: { bytes: statusBytes, ms: statusMs, status: statusRes.status },
    },
  };
  report(result, [
    `Scale benchmark: ${MOUNTS} mounts, ${NODES} nodes reporting every second, one etcd; load ${before.loadavg}`,
    `  icecast.xml render: ${result.render.masterMs} ms as master, ${result.render.relayMs} ms as relay (${xmlBytes} bytes)`,
    `  Balancer.choose over ${NODES} nodes: ${choose.usPerOp} us`,
    `  cluster view: full reset ${result.clusterView.resetMs} ms; one status report applied ${apply.usPerOp} us; snapshot ${snapshot.usPerOp} us`,
    `  etcd, steady state over ${load.windowS} s: ${load.revisionsPerSec} status revisions/s, ${round(load.valueBytesPerSec / 1024, 1)} KB/s of values (mean status ${load.meanStatusBytes} bytes); etcd RSS ${etcdRssMiB} MiB; ${MOUNTS} mount puts took ${Math.round(putMountsMs)} ms`,
    `  a health change (Icecast down) reached etcd ${load.healthPublishMs} ms after it was published`,
    `  cluster view: ${load.viewChanges} changes in the window, ${load.mountsMapChanges} of them new mounts maps (radiod renders icecast.xml only for those)`,
    `  etcd db: ${round(load.dbInUseBytes / 1048576, 1)} MiB in use now; ${load.dbBytesPerValueByte} db bytes per value byte; projected after 24 h with 1 h periodic compaction: ${round(projectedDbBytes / 1048576, 0)} MiB = ${quotaShare} % of the 2 GiB quota`,
    `  redirectord with that state: RSS ${rdRssIdleMiB} MiB idle, ${rdRssAfterMiB} MiB after load; ${rdIdleCpuPct} % CPU just following the reports`,
    `  redirects end to end (random mount, new connection each): ${Math.round(e2e.rps)} req/s, p50 ${round(e2e.p50Ms)} ms, p99 ${round(e2e.p99Ms)} ms, bad ${e2e.badStatus}`,
    `  /status.json: ${statusBytes} bytes in ${statusMs} ms`,
  ]);
});
