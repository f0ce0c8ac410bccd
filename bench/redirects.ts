import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { benchArgs, cpuSeconds, machine, median, numFlag, report, round, rssBytes, runBench, sleep, startChild } from './lib/common.js';
import { summarizeProfiles } from './lib/cpuprofile.js';
import { benchEtcd, benchMount, fakeNodeStatus, putMounts, putNodeStatus, startRedirectord } from './lib/fixture.js';
import { startNginx } from './lib/nginx.js';
import { wrk, type WrkResult } from './lib/wrk.js';

/**
 * `GET /mount` answered with a 302: the real redirectord (fastify behind the front door, a
 * watched etcd view, the balancer) against nginx `return 302`, one worker each, wrk in its own
 * process, with keep-alive and with a new connection per request. Usage:
 *   node --import tsx bench/redirects.ts [--quick] [--seconds N] [--rounds N] [--connections N] [--only keepalive|close] [--profile]
 * --profile runs redirectord under --cpu-prof and prints where its time went.
 */

const args = benchArgs();
const seconds = numFlag(args, '--seconds', args.quick ? 3 : 15);
const rounds = numFlag(args, '--rounds', args.quick ? 1 : 3);
const connections = numFlag(args, '--connections', 50);
const profile = args.has('--profile');
const only = args.flags.get('--only');
const MOUNT = '/bench/live.mp3';

interface Run extends WrkResult {
  cpuSeconds: number;
  reqPerCpuSecond: number;
}

async function measure(url: string, pid: number, headers: string[]): Promise<Run> {
  const cpu0 = cpuSeconds(pid);
  const r = await wrk({ url, seconds, connections, headers });
  const cpu = cpuSeconds(pid) - cpu0;
  return { ...r, cpuSeconds: round(cpu), reqPerCpuSecond: Math.round(r.requests / Math.max(cpu, 0.01)) };
}

function medianRun(runs: Run[]): Run {
  return [...runs].sort((a, b) => a.rps - b.rps)[Math.floor((runs.length - 1) / 2)]!;
}

runBench('redirects', async () => {
  const loadBefore = machine();
  const { etcd, client } = await benchEtcd();
  await putMounts(client, [benchMount(MOUNT)]);
  await putNodeStatus(client, fakeNodeStatus('bench1', '127.0.0.1', 8000));
  const profDir = profile ? await mkdtemp(join(tmpdir(), 'autoradio-bench-prof-')) : undefined;
  const rd = await startRedirectord({
    etcdUrl: etcd.url,
    readyPath: MOUNT,
    nodeArgs: profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [],
  });
  // nginx gets the very headers redirectord sends, so both answers are the same size.
  const sample = await fetch(`${rd.url}${MOUNT}`, { redirect: 'manual' });
  await sample.arrayBuffer();
  const location = sample.headers.get('location')!;
  const same: Record<string, string> = {};
  for (const [k, v] of sample.headers) {
    if (!['date', 'connection', 'content-length', 'location', 'keep-alive'].includes(k)) same[k] = v;
  }
  const responseHeaders = [...sample.headers.keys()];
  const nginx = await startNginx({ location, extraHeaders: same, keepalive: true });

  const modes = [
    { name: 'keepalive', headers: [] as string[] },
    { name: 'close', headers: ['Connection: close'] },
  ].filter((m) => only === undefined || m.name === only);
  // A third contender shows what Node itself costs: a bare net server sending a fixed 302.
  const floor = startChild(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'lib', 'raw-redirect-server.ts'), location], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const [portLine] = (await once(createInterface({ input: floor.child.stdout! }), 'line')) as [string];
  const floorUrl = `http://127.0.0.1:${(JSON.parse(portLine) as { port: number }).port}${MOUNT}`;
  const runs: Record<string, { redirectord: Run[]; nginx: Run[]; nodeFloor: Run[] }> = {};
  for (const m of modes) runs[m.name] = { redirectord: [], nginx: [], nodeFloor: [] };
  // Warm-up: the JIT and the first connections are not what is being measured.
  await wrk({ url: `${rd.url}${MOUNT}`, seconds: args.quick ? 1 : 3, connections, headers: ['Connection: close'] });
  await wrk({ url: `http://127.0.0.1:${nginx.port}${MOUNT}`, seconds: 1, connections });
  await wrk({ url: floorUrl, seconds: 1, connections, headers: ['Connection: close'] });
  for (let r = 0; r < rounds; r++) {
    for (const m of modes) {
      runs[m.name]!.redirectord.push(await measure(`${rd.url}${MOUNT}`, rd.pid, m.headers));
      await sleep(500);
      runs[m.name]!.nginx.push(await measure(`http://127.0.0.1:${nginx.port}${MOUNT}`, nginx.workerPid, m.headers));
      await sleep(500);
      runs[m.name]!.nodeFloor.push(await measure(floorUrl, floor.child.pid!, m.headers));
      await sleep(500);
    }
  }
  const rdRss = rssBytes(rd.pid);
  await rd.stop();
  let prof: Awaited<ReturnType<typeof summarizeProfiles>> | undefined;
  if (profDir) {
    prof = await summarizeProfiles(profDir, 400);
    await rm(profDir, { recursive: true, force: true });
  }

  const result: Record<string, unknown> = {
    bench: 'redirects',
    quick: args.quick,
    seconds,
    rounds,
    connections,
    machineBefore: loadBefore,
    machineAfter: machine(),
    redirectLocation: location,
    redirectordResponseHeaders: responseHeaders,
    redirectordRssMiB: round(rdRss / 1048576, 1),
    modes: {} as Record<string, unknown>,
  };
  const summary = [
    `Redirect benchmark: wrk -t1 -c${connections} ${seconds}s x ${rounds} round(s), GET ${MOUNT} -> 302, one worker each, loopback; load ${loadBefore.loadavg}`,
  ];
  for (const m of modes) {
    const rdRuns = runs[m.name]!.redirectord;
    const ngRuns = runs[m.name]!.nginx;
    const rdMed = medianRun(rdRuns);
    const ngMed = medianRun(ngRuns);
    const flRuns = runs[m.name]!.nodeFloor;
    const flMed = medianRun(flRuns);
    const ratio = round(median(rdRuns.map((x) => x.rps)) / median(ngRuns.map((x) => x.rps)), 3);
    const cpuRatio = round(median(rdRuns.map((x) => x.reqPerCpuSecond)) / median(ngRuns.map((x) => x.reqPerCpuSecond)), 3);
    (result.modes as Record<string, unknown>)[m.name] = {
      redirectord: { ...rdMed, rpsRuns: rdRuns.map((x) => x.rps) },
      nginx: { ...ngMed, rpsRuns: ngRuns.map((x) => x.rps) },
      nodeFloor: { ...flMed, rpsRuns: flRuns.map((x) => x.rps) },
      ratio,
      ratioPerCpuSecond: cpuRatio,
      target: 0.5,
      meetsTarget: ratio >= 0.5,
    };
    const line = (name: string, x: Run, all: Run[]) =>
      `  ${name.padEnd(12)} ${String(Math.round(median(all.map((y) => y.rps)))).padStart(7)} req/s (runs ${all.map((y) => Math.round(y.rps)).join(', ')})  p50 ${round(x.p50Ms)} ms  p99 ${round(x.p99Ms)} ms  ${x.reqPerCpuSecond} req per CPU-s  bad ${x.badStatus}  sockerr ${Object.values(x.socketErrors).reduce((a, b) => a + b, 0)}`;
    summary.push(
      `${m.name === 'keepalive' ? 'keep-alive (the front door keeps the connection and answers the next request itself)' : 'new connection per request (Connection: close)'}:`,
      line('redirectord', rdMed, rdRuns),
      line('nginx', ngMed, ngRuns),
      line('node floor', flMed, flRuns),
      `  ratio redirectord/nginx: ${ratio} req/s (target >= 0.5: ${ratio >= 0.5 ? 'met' : 'NOT met'}), ${cpuRatio} per CPU-second`,
    );
  }
  if (prof) {
    result.profile = { areas: prof.areas.slice(0, 20), functions: prof.functions.slice(0, 30), inclusive: prof.inclusive.slice(0, 60) };
    summary.push('redirectord CPU profile (% of busy time), self time by area:');
    for (const a of prof.areas.slice(0, 12)) summary.push(`  ${String(a.selfPct).padStart(5)} %  ${a.name}`);
    summary.push('top functions (self time):');
    for (const f of prof.functions.slice(0, 15)) summary.push(`  ${String(f.selfPct).padStart(5)} %  ${f.name}`);
    summary.push('top functions (inclusive time, % of busy time):');
    for (const f of prof.inclusive.slice(0, 25)) summary.push(`  ${String(f.selfPct).padStart(5)} %  ${f.name}`);
    summary.push('redirectord code (inclusive time):');
    for (const f of prof.inclusive.filter((x) => x.name.includes('dist/')).slice(0, 15)) summary.push(`  ${String(f.selfPct).padStart(5)} %  ${f.name}`);
  }
  report(result, summary);
});
