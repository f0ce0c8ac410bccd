import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { BENCH_DOMAIN, nsdZoneFile, queryFile } from './dns-zone.js';

/**
 * DNS throughput: dnsperf against redirectord's DNS server and against nsd serving the same
 * zone statically, one after the other on 127.0.0.1. Usage:
 *   node --import tsx bench/dns.ts [--quick] [--seconds N] [--rounds N]
 * Rounds alternate the two servers and the medians are reported, because on a shared 2-core
 * machine one run's number is mostly noise. Prints one JSON line, then a short human summary.
 */

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const secondsArg = args.indexOf('--seconds');
const seconds = secondsArg >= 0 ? Number(args[secondsArg + 1]) : quick ? 3 : 8;
const roundsArg = args.indexOf('--rounds');
const rounds = roundsArg >= 0 ? Number(args[roundsArg + 1]) : quick ? 1 : 2;
const OUTSTANDING = 100;

interface PerfResult {
  qps: number;
  sent: number;
  completed: number;
  lost: number;
  avgLatencyMs: number;
  p50LatencyMs: number;
  p99LatencyMs: number;
  rcodes: string;
}

const children = new Set<ChildProcess>();
function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
function killAll(): void {
  for (const c of children) c.kill('SIGKILL');
}
process.on('SIGINT', () => {
  killAll();
  process.exit(130);
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 4000);
  await once(child, 'exit');
  clearTimeout(timer);
}

async function digWorks(port: number): Promise<boolean> {
  const dig = spawn('dig', [`@127.0.0.1`, '-p', String(port), '+short', '+time=1', '+tries=1', BENCH_DOMAIN, 'SOA'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let out = '';
  dig.stdout.on('data', (c: Buffer) => (out += c.toString()));
  await once(dig, 'exit');
  return out.includes('hostmaster');
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs dnsperf with -v so every answer's latency can be read for percentiles. */
async function dnsperf(port: number, queries: string): Promise<PerfResult> {
  const child = track(
    spawn(
      'dnsperf',
      ['-s', '127.0.0.1', '-p', String(port), '-d', queries, '-l', String(seconds), '-q', String(OUTSTANDING), '-e', '-v'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    ),
  );
  const latencies: number[] = [];
  const summary: string[] = [];
  const rl = createInterface({ input: child.stdout! });
  rl.on('line', (line) => {
    if (line.startsWith('> ')) {
      const v = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (Number.isFinite(v)) latencies.push(v);
    } else summary.push(line);
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`dnsperf exited ${code}: ${stderr.trim()}`);
  const text = summary.join('\n');
  const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]! * 1000 : NaN);
  return {
    qps: Math.round(num(/Queries per second:\s+([\d.]+)/)),
    sent: num(/Queries sent:\s+(\d+)/),
    completed: num(/Queries completed:\s+(\d+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    avgLatencyMs: round(num(/Average Latency \(s\):\s+([\d.]+)/) * 1000),
    p50LatencyMs: round(pct(0.5)),
    p99LatencyMs: round(pct(0.99)),
    rcodes: /Response codes:\s+(.*)/.exec(text)?.[1] ?? '',
  };
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}

async function startOurs(): Promise<{ port: number; child: ChildProcess }> {
  const child = track(
    spawn(process.execPath, ['--import', 'tsx', join(here, 'dns-target.ts')], {
      stdio: ['ignore', 'pipe', 'inherit'],
      cwd: join(here, '..'),
    }),
  );
  const rl = createInterface({ input: child.stdout! });
  const [line] = (await Promise.race([
    once(rl, 'line'),
    once(child, 'exit').then(() => {
      throw new Error('DNS target exited before listening');
    }),
  ])) as [string];
  const port = (JSON.parse(line) as { port: number }).port;
  await waitUntil('our DNS server', () => digWorks(port));
  return { port, child };
}

async function startNsd(dir: string): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  await writeFile(join(dir, 'zone'), nsdZoneFile());
  // Debian's nsd rate-limits by default (about 440 q/s from one source): off for a benchmark.
  const conf = [
    'server:',
    `  ip-address: 127.0.0.1@${port}`,
    `  port: ${port}`,
    '  username: ""',
    '  chroot: ""',
    `  zonesdir: "${dir}"`,
    '  database: ""',
    `  pidfile: "${join(dir, 'nsd.pid')}"`,
    `  logfile: "${join(dir, 'nsd.log')}"`,
    `  xfrdfile: "${join(dir, 'xfrd.state')}"`,
    `  zonelistfile: "${join(dir, 'zone.list')}"`,
    '  server-count: 1',
    '  rrl-ratelimit: 0',
    '  do-ip6: no',
    '  verbosity: 0',
    'remote-control:',
    '  control-enable: no',
    'zone:',
    `  name: ${BENCH_DOMAIN}`,
    `  zonefile: "${join(dir, 'zone')}"`,
    '',
  ].join('\n');
  await writeFile(join(dir, 'nsd.conf'), conf);
  const child = track(spawn('nsd', ['-d', '-c', join(dir, 'nsd.conf')], { stdio: ['ignore', 'ignore', 'inherit'] }));
  await waitUntil('nsd', () => digWorks(port));
  return { port, child };
}

async function measure(start: () => Promise<{ port: number; child: ChildProcess }>, queries: string): Promise<PerfResult> {
  const server = await start();
  try {
    return await dnsperf(server.port, queries);
  } finally {
    await stop(server.child);
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The run whose q/s is the median (the lower middle one for an even count). */
function medianRun(runs: PerfResult[]): PerfResult {
  const sorted = [...runs].sort((a, b) => a.qps - b.qps);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'autoradio-dnsbench-'));
  try {
    const queries = join(dir, 'queries.txt');
    await writeFile(queries, queryFile());
    const loadBefore = loadavg()[0]!;
    const oursRuns: PerfResult[] = [];
    const nsdRuns: PerfResult[] = [];
    for (let r = 0; r < rounds; r++) {
      oursRuns.push(await measure(startOurs, queries));
      nsdRuns.push(await measure(() => startNsd(dir), queries));
    }
    const ours = medianRun(oursRuns);
    const nsd = medianRun(nsdRuns);
    const ratio = Math.round((median(oursRuns.map((x) => x.qps)) / median(nsdRuns.map((x) => x.qps))) * 100) / 100;
    const result = {
      bench: 'dns',
      seconds,
      rounds,
      outstanding: OUTSTANDING,
      loadavg1: Math.round(loadBefore * 100) / 100,
      ours: { ...ours, qpsRuns: oursRuns.map((x) => x.qps) },
      nsd: { ...nsd, qpsRuns: nsdRuns.map((x) => x.qps) },
      ratio,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    const line = (name: string, r: PerfResult, runs: PerfResult[]) =>
      `${name.padEnd(12)} ${String(Math.round(median(runs.map((x) => x.qps)))).padStart(7)} q/s (runs ${runs.map((x) => x.qps).join(', ')})   avg ${r.avgLatencyMs} ms   p50 ${r.p50LatencyMs} ms   p99 ${r.p99LatencyMs} ms   lost ${r.lost}/${r.sent}`;
    process.stdout.write(
      [
        `DNS benchmark: dnsperf ${seconds} s x ${rounds} round(s) per server, ${OUTSTANDING} outstanding, EDNS, 127.0.0.1, load average ${result.loadavg1}`,
        line('redirectord', ours, oursRuns),
        line('nsd', nsd, nsdRuns),
        `ratio redirectord/nsd (median q/s): ${ratio}`,
        '',
      ].join('\n'),
    );
  } finally {
    killAll();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  killAll();
  process.stderr.write(`dns bench failed: ${(err as Error).message}\n`);
  process.exit(1);
});
