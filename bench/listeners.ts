import { once } from 'node:events';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { freePort } from '../test/support/ports.js';
import { makeTestCa } from '../test/support/tls.js';
import { benchArgs, cpuSeconds, machine, numFlag, onCleanup, report, round, rssBytes, runBench, sleep, startChild, stopChild } from './lib/common.js';
import { benchEtcd, benchMount, putMounts } from './lib/fixture.js';
import { startRedirectord } from './lib/fixture.js';
import { icecastWithSource } from './lib/icecast-source.js';
import type { PoolConfig } from './lib/listener-pool.js';

/**
 * N concurrent 128 kbit/s listeners through redirectord's /_stream proxy against the same N
 * straight on Icecast: CPU seconds (utime+stime from /proc) of redirectord + Icecast against
 * Icecast alone over a steady window, RSS per 1,000 listeners, and whether every listener kept
 * up (no disconnect, at least 14,000 B/s each over the window). Usage:
 *   node --import tsx bench/listeners.ts [--quick] [--n 200,500] [--window S] [--max N] [--pin CPU] [--https]
 * Quick: N = 300. Full: a ramp (500, 1000, 2000, ...) until a listener falls behind.
 * `--pin CPU`: Icecast and redirectord (every thread) share that one core, the listener pool
 * runs elsewhere, so the figures compare the servers' own work on equal terms.
 * Targets: Icecast + redirectord at most 2x Icecast alone; redirectord RSS at most 10 MiB per 1,000.
 * `--https`: the same N also through the front door's HTTPS port (a test CA's certificate), for
 * redirectord's CPU over TLS against plain HTTP.
 */

const args = benchArgs();
const windowS = numFlag(args, '--window', args.quick ? 4 : 15);
const settleMs = args.quick ? 1500 : 4000;
const maxN = numFlag(args, '--max', 8000);
const steps = args.flags.get('--n')?.split(',').map(Number) ?? (args.quick ? [300] : [500, 1000, 2000, 3000, 4000, 6000, 8000]);
const MOUNT = '/bench.mp3';
const KEEPUP_BYTES_PER_SEC = 14_000;
const pinCpu = args.flags.get('--pin');
const withHttps = args.has('--https');
const CPU_RATIO_TARGET = 2;
const RSS_PER_1000_TARGET_MIB = 10;

/** Every thread of `pid` onto `cpu` (taskset -a). */
function pin(pid: number): void {
  if (pinCpu !== undefined) execFileSync('taskset', ['-a', '-pc', pinCpu, String(pid)], { stdio: 'ignore' });
}

interface Mark {
  seconds: number;
  open: number;
  closed: number;
  minBytesPerSec: number;
  p1BytesPerSec: number;
  medianBytesPerSec: number;
  below14k: number;
}
interface Ready {
  open: number;
  failed: number;
  failures: Record<string, number>;
  rampMs: number;
  connectP50Ms: number;
  connectP99Ms: number;
  headP50Ms: number;
  headP99Ms: number;
}

class Pool {
  private constructor(
    readonly child: ChildProcess,
    private readonly lines: Interface,
  ) {}

  static async start(cfg: PoolConfig): Promise<{ pool: Pool; ready: Ready }> {
    const { child } = startChild(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'lib', 'listener-pool.ts'), JSON.stringify(cfg)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const pool = new Pool(child, createInterface({ input: child.stdout! }));
    const ready = (await pool.next()) as unknown as Ready;
    return { pool, ready };
  }

  async next(): Promise<Record<string, unknown>> {
    const [line] = (await Promise.race([
      once(this.lines, 'line'),
      once(this.child, 'exit').then(() => {
        throw new Error('listener pool exited');
      }),
    ])) as [string];
    return JSON.parse(line) as Record<string, unknown>;
  }

  async mark(): Promise<Mark> {
    this.child.stdin!.write('mark\n');
    return (await this.next()) as unknown as Mark;
  }

  async stop(): Promise<void> {
    this.child.stdin!.write('quit\n');
    await stopChild(this.child, 'SIGTERM', 3000);
  }
}

/** Waits (10 s at most) until redirectord knows the mount: a HEAD of its stream is no longer 404. */
async function untilServed(url: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await fetch(url, { method: 'HEAD' }).catch(() => undefined);
    if (res && res.status !== 404) return;
    if (Date.now() > deadline) throw new Error(`${url} still not served`);
    await sleep(100);
  }
}

type ListenerPath = 'direct' | 'proxied' | 'proxied-tls';

interface StepResult {
  path: ListenerPath;
  n: number;
  ready: Ready;
  window: Mark;
  cpu: { icecastCpuS: number; redirectordCpuS: number; icecastPct: number; redirectordPct: number };
  rss: { icecastMiB: number; redirectordMiB: number; redirectordDeltaMiB: number; icecastDeltaMiB: number };
  keptUp: boolean;
}

runBench('listeners', async () => {
  const before = machine();
  const { etcd, client } = await benchEtcd();
  // The front door serves /_stream for the cluster's mounts only.
  await putMounts(client, [benchMount(MOUNT)]);
  const { icecast, pid: icePid } = await icecastWithSource(MOUNT);
  const https = withHttps ? await httpsFiles() : undefined;
  const rd = await startRedirectord({ etcdUrl: etcd.url, icecastPort: icecast.port, extraArgs: https?.args });
  pin(icePid);
  pin(rd.pid);
  await untilServed(`${rd.url}/_stream${MOUNT}`);
  const results: StepResult[] = [];
  // RSS per listener is measured against the idle daemons, not against the previous step.
  await sleep(1000);
  const iceRssBase = rssBytes(icePid);
  const rdRssBase = rssBytes(rd.pid);
  let maxHeld = { direct: 0, proxied: 0 };

  async function step(path: ListenerPath, n: number): Promise<StepResult> {
    const { pool, ready } = await Pool.start({
      host: '127.0.0.1',
      port: path === 'direct' ? icecast.port : path === 'proxied' ? rd.httpPort : https!.port,
      path: path === 'direct' ? MOUNT : `/_stream${MOUNT}`,
      count: n,
      concurrentConnects: 4,
      perSourceIp: 200,
      tlsServername: path === 'proxied-tls' ? HTTPS_NAME : undefined,
    });
    try {
      await sleep(settleMs);
      await pool.mark();
      const ice0 = cpuSeconds(icePid);
      const rd0 = cpuSeconds(rd.pid);
      const t0 = Date.now();
      await sleep(windowS * 1000);
      const window = await pool.mark();
      const dt = (Date.now() - t0) / 1000;
      const iceCpu = cpuSeconds(icePid) - ice0;
      const rdCpu = cpuSeconds(rd.pid) - rd0;
      const iceRss = rssBytes(icePid);
      const rdRss = rssBytes(rd.pid);
      const keptUp = ready.failed === 0 && ready.open === n && window.closed === 0 && window.below14k === 0;
      return {
        path,
        n,
        ready,
        window,
        cpu: {
          icecastCpuS: round(iceCpu, 3),
          redirectordCpuS: round(rdCpu, 3),
          icecastPct: round((iceCpu / dt) * 100, 1),
          redirectordPct: round((rdCpu / dt) * 100, 1),
        },
        rss: {
          icecastMiB: round(iceRss / 1048576, 1),
          redirectordMiB: round(rdRss / 1048576, 1),
          icecastDeltaMiB: round((iceRss - iceRssBase) / 1048576, 1),
          redirectordDeltaMiB: round((rdRss - rdRssBase) / 1048576, 1),
        },
        keptUp,
      };
    } finally {
      await pool.stop();
      // Let both servers notice the closed listeners before the next step.
      await sleep(1000);
    }
  }

  for (const n of steps) {
    if (n > maxN) break;
    const direct = await step('direct', n);
    const proxied = await step('proxied', n);
    results.push(direct, proxied);
    if (https) results.push(await step('proxied-tls', n));
    if (direct.keptUp) maxHeld.direct = n;
    if (proxied.keptUp) maxHeld.proxied = n;
    if (!args.quick && !proxied.keptUp && !direct.keptUp) break;
    if (!args.quick && !proxied.keptUp) break;
  }
  const rdIdleRss = rssBytes(rd.pid);

  const pairs = steps
    .map((n) => ({ n, d: results.find((r) => r.n === n && r.path === 'direct'), p: results.find((r) => r.n === n && r.path === 'proxied') }))
    .filter((x) => x.d && x.p)
    .map(({ n, d, p }) => {
      const total = p!.cpu.icecastCpuS + p!.cpu.redirectordCpuS;
      const ratio = round(total / Math.max(d!.cpu.icecastCpuS, 0.001), 2);
      const tls = results.find((r) => r.n === n && r.path === 'proxied-tls');
      return {
        ...(tls && {
          httpsRedirectordCpuPct: tls.cpu.redirectordPct,
          httpsVsHttpRedirectordCpu: round(tls.cpu.redirectordCpuS / Math.max(p!.cpu.redirectordCpuS, 0.001), 2),
          httpsKeptUp: tls.keptUp,
        }),
        n,
        icecastAloneCpuPct: d!.cpu.icecastPct,
        proxiedIcecastCpuPct: p!.cpu.icecastPct,
        proxiedRedirectordCpuPct: p!.cpu.redirectordPct,
        cpuRatio: ratio,
        meetsTarget: ratio <= CPU_RATIO_TARGET,
        meetsRssTarget: (p!.rss.redirectordDeltaMiB * 1000) / n <= RSS_PER_1000_TARGET_MIB,
        redirectordRssPer1000MiB: round((p!.rss.redirectordDeltaMiB * 1000) / n, 1),
        icecastRssPer1000MiB: round((d!.rss.icecastDeltaMiB * 1000) / n, 1),
        keptUp: { direct: d!.keptUp, proxied: p!.keptUp },
      };
    });
  const result = {
    bench: 'listeners',
    quick: args.quick,
    windowSeconds: windowS,
    pinnedCpu: pinCpu ?? null,
    machineBefore: before,
    machineAfter: machine(),
    keepUpBytesPerSec: KEEPUP_BYTES_PER_SEC,
    pairs,
    maxHeld,
    redirectordRssAfterMiB: round(rdIdleRss / 1048576, 1),
    idleRssMiB: { redirectord: round(rdRssBase / 1048576, 1), icecast: round(iceRssBase / 1048576, 1) },
    steps: results,
  };
  const summary = [
    `Listener proxy benchmark: 128 kbit/s MP3 (ffmpeg -> Icecast 2.4.4), raw-socket listeners in a separate process, ${windowS} s steady window; servers ${pinCpu === undefined ? 'not pinned' : `pinned to CPU ${pinCpu}`}; load ${before.loadavg}`,
    '      N   Icecast alone | via /_stream: Icecast + redirectord = total   ratio   rd RSS/1000   kept up (direct/proxied)',
  ];
  for (const p of pairs) {
    const total = round(p.proxiedIcecastCpuPct + p.proxiedRedirectordCpuPct, 1);
    summary.push(
      `  ${String(p.n).padStart(5)}   ${String(p.icecastAloneCpuPct).padStart(5)} % CPU   | ${String(p.proxiedIcecastCpuPct).padStart(5)} % + ${String(p.proxiedRedirectordCpuPct).padStart(5)} % = ${String(total).padStart(5)} %   ${String(p.cpuRatio).padStart(5)}x   ${String(p.redirectordRssPer1000MiB).padStart(6)} MiB   ${p.keptUp.direct}/${p.keptUp.proxied}`,
    );
  }
  for (const p of pairs) {
    if (p.httpsRedirectordCpuPct !== undefined) {
      summary.push(`  N=${p.n} over HTTPS: redirectord ${p.httpsRedirectordCpuPct} % CPU, ${p.httpsVsHttpRedirectordCpu}x its CPU over HTTP; kept up ${p.httpsKeptUp}`);
    }
  }
  for (const r of results) {
    summary.push(
      `  ${r.path.padEnd(11)} N=${r.n}: open ${r.window.open}, failed ${r.ready.failed} ${JSON.stringify(r.ready.failures)}, closed ${r.window.closed}, below 14 kB/s ${r.window.below14k}, min ${r.window.minBytesPerSec} B/s, median ${r.window.medianBytesPerSec} B/s, ramp ${r.ready.rampMs} ms (connect p99 ${r.ready.connectP99Ms} ms)`,
    );
  }
  summary.push(
    `largest N held: direct ${maxHeld.direct}, proxied ${maxHeld.proxied} (of ${steps.filter((n) => n <= maxN).join(', ')}); target total CPU <= ${CPU_RATIO_TARGET}x Icecast alone: ${pairs.every((p) => p.meetsTarget) ? 'met' : 'NOT met'}; redirectord RSS <= ${RSS_PER_1000_TARGET_MIB} MiB per 1,000: ${pairs.every((p) => p.meetsRssTarget) ? 'met' : 'NOT met'}`,
  );
  report(result, summary);
});

const HTTPS_NAME = 'bench.test';

/** A test CA's certificate for the front door's HTTPS port, and the flags that serve it. */
async function httpsFiles(): Promise<{ port: number; args: string[] }> {
  const ca = await makeTestCa();
  onCleanup(() => ca.remove());
  const pair = await ca.issue('front-door', [HTTPS_NAME]);
  const port = await freePort();
  return { port, args: ['--https-port', String(port), '--tls-cert', pair.certFile, '--tls-key', pair.keyFile] };
}
