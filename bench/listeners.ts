import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { benchArgs, cpuSeconds, machine, numFlag, report, round, rssBytes, runBench, sleep, startChild, stopChild } from './lib/common.js';
import { benchEtcd } from './lib/fixture.js';
import { startRedirectord } from './lib/fixture.js';
import { icecastWithSource } from './lib/icecast-source.js';
import type { PoolConfig } from './lib/listener-pool.js';

/**
 * N concurrent 128 kbit/s listeners through redirectord's /_stream proxy against the same N
 * straight on Icecast: CPU seconds (utime+stime from /proc) of redirectord + Icecast against
 * Icecast alone over a steady window, RSS per 1,000 listeners, and whether every listener kept
 * up (no disconnect, at least 14,000 B/s each over the window). Usage:
 *   node --import tsx bench/listeners.ts [--quick] [--n 200,500] [--window S] [--max N]
 * Quick: N = 200 and 500. Full: a ramp (500, 1000, 2000, ...) until a listener falls behind.
 */

const args = benchArgs();
const windowS = numFlag(args, '--window', args.quick ? 4 : 15);
const settleMs = args.quick ? 1500 : 4000;
const maxN = numFlag(args, '--max', 8000);
const steps = args.flags.get('--n')?.split(',').map(Number) ?? (args.quick ? [300] : [500, 1000, 2000, 3000, 4000, 6000, 8000]);
const MOUNT = '/bench.mp3';
const KEEPUP_BYTES_PER_SEC = 14_000;

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

interface StepResult {
  path: 'direct' | 'proxied';
  n: number;
  ready: Ready;
  window: Mark;
  cpu: { icecastCpuS: number; redirectordCpuS: number; icecastPct: number; redirectordPct: number };
  rss: { icecastMiB: number; redirectordMiB: number; redirectordDeltaMiB: number; icecastDeltaMiB: number };
  keptUp: boolean;
}

runBench('listeners', async () => {
  const before = machine();
  const { etcd } = await benchEtcd();
  const { icecast, pid: icePid } = await icecastWithSource(MOUNT);
  const rd = await startRedirectord({ etcdUrl: etcd.url, icecastPort: icecast.port });
  const results: StepResult[] = [];
  // RSS per listener is measured against the idle daemons, not against the previous step.
  await sleep(1000);
  const iceRssBase = rssBytes(icePid);
  const rdRssBase = rssBytes(rd.pid);
  let maxHeld = { direct: 0, proxied: 0 };

  async function step(path: 'direct' | 'proxied', n: number): Promise<StepResult> {
    const { pool, ready } = await Pool.start({
      host: '127.0.0.1',
      port: path === 'direct' ? icecast.port : rd.httpPort,
      path: path === 'direct' ? MOUNT : `/_stream${MOUNT}`,
      count: n,
      concurrentConnects: 4,
      perSourceIp: 200,
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
      return {
        n,
        icecastAloneCpuPct: d!.cpu.icecastPct,
        proxiedIcecastCpuPct: p!.cpu.icecastPct,
        proxiedRedirectordCpuPct: p!.cpu.redirectordPct,
        cpuRatio: ratio,
        meetsTarget: ratio <= 3,
        redirectordRssPer1000MiB: round((p!.rss.redirectordDeltaMiB * 1000) / n, 1),
        icecastRssPer1000MiB: round((d!.rss.icecastDeltaMiB * 1000) / n, 1),
        keptUp: { direct: d!.keptUp, proxied: p!.keptUp },
      };
    });
  const result = {
    bench: 'listeners',
    quick: args.quick,
    windowSeconds: windowS,
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
    `Listener proxy benchmark: 128 kbit/s MP3 (ffmpeg -> Icecast 2.4.4), raw-socket listeners in a separate process, ${windowS} s steady window; load ${before.loadavg}`,
    '      N   Icecast alone | via /_stream: Icecast + redirectord = total   ratio   rd RSS/1000   kept up (direct/proxied)',
  ];
  for (const p of pairs) {
    const total = round(p.proxiedIcecastCpuPct + p.proxiedRedirectordCpuPct, 1);
    summary.push(
      `  ${String(p.n).padStart(5)}   ${String(p.icecastAloneCpuPct).padStart(5)} % CPU   | ${String(p.proxiedIcecastCpuPct).padStart(5)} % + ${String(p.proxiedRedirectordCpuPct).padStart(5)} % = ${String(total).padStart(5)} %   ${String(p.cpuRatio).padStart(5)}x   ${String(p.redirectordRssPer1000MiB).padStart(6)} MiB   ${p.keptUp.direct}/${p.keptUp.proxied}`,
    );
  }
  for (const r of results) {
    summary.push(
      `  ${r.path.padEnd(7)} N=${r.n}: open ${r.window.open}, failed ${r.ready.failed} ${JSON.stringify(r.ready.failures)}, closed ${r.window.closed}, below 14 kB/s ${r.window.below14k}, min ${r.window.minBytesPerSec} B/s, median ${r.window.medianBytesPerSec} B/s, ramp ${r.ready.rampMs} ms (connect p99 ${r.ready.connectP99Ms} ms)`,
    );
  }
  summary.push(
    `largest N held: direct ${maxHeld.direct}, proxied ${maxHeld.proxied} (of ${steps.filter((n) => n <= maxN).join(', ')}); target total CPU <= 3x Icecast alone: ${pairs.every((p) => p.meetsTarget) ? 'met' : 'NOT met'}`,
  );
  report(result, summary);
});
