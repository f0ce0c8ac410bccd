import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Cluster } from '../test/support/cluster.js';
import { runOk } from '../test/support/netns.js';
import { liveMount, missingPrograms } from '../test/cluster/setup.js';
import { benchArgs, machine, numFlag, onCleanup, report, round, runBench, sleep, startChild, stopChild } from './lib/common.js';
import type { PoolConfig } from './lib/listener-pool.js';

/**
 * A flash crowd on the namespace cluster: N listeners (5,000) arrive within S seconds (10),
 * spread over the 3 nodes' front doors as DNS would spread them, each asking for the public
 * mount URL, following the 302 to the chosen node's /_stream and reading the stream. Reports
 * how many got audio, time to the stream's response head from arrival (p50/p99), the spread
 * over nodes, and whether every listener keeps up for a few seconds afterwards. Usage:
 *   node --import tsx bench/flash-crowd.ts [--quick] [--listeners N] [--seconds S]
 * Quick: 1,000 listeners in 5 s (the full crowd takes minutes to set up and tear down).
 */

const args = benchArgs();
const count = numFlag(args, '--listeners', args.quick ? 1000 : 5000);
const seconds = numFlag(args, '--seconds', args.quick ? 5 : 10);
const readSeconds = numFlag(args, '--read', args.quick ? 2 : 5);
// redirectord accepts 256 connections per client address; spread the crowd like real listeners.
const PER_IP = 200;

runBench('flash-crowd', async () => {
  const missing = missingPrograms();
  if (missing) throw new Error(missing);
  const before = machine();
  const c = await Cluster.start({ nodes: 3, daemons: true, logLevel: 'warn' });
  onCleanup(() => c.stop());
  await c.waitDaemonsReady(40_000);
  const mount = '/crowd.mp3';
  const { source } = await liveMount(c, mount, c.nodes[0]!);
  onCleanup(() => source.stop());

  const subnet = c.clientIp.split('.').slice(0, 3).join('.');
  const ipCount = Math.ceil(count / PER_IP);
  const sourceIps = Array.from({ length: ipCount }, (_, i) => `${subnet}.${201 + i}`);
  if (201 + ipCount > 254) throw new Error(`too many listeners for one /24 of client addresses (${count})`);
  for (const ip of sourceIps) await runOk(['ip', '-n', c.clientNs, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);

  const cfg: PoolConfig = {
    host: c.nodes[0]!.ip,
    hosts: c.nodes.map((n) => n.ip),
    port: 80,
    path: mount,
    count,
    concurrentConnects: 1,
    perSourceIp: PER_IP,
    sourceIps,
    followRedirect: true,
    arrivalSeconds: seconds,
  };
  const pool = startChild(
    'ip',
    ['netns', 'exec', c.clientNs, process.execPath, '--import', 'tsx', join(import.meta.dirname, 'lib', 'listener-pool.ts'), JSON.stringify(cfg)],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  onCleanup(() => stopChild(pool.child, 'SIGKILL', 1000));
  const lines = createInterface({ input: pool.child.stdout! });
  const next = async () => {
    const [line] = (await Promise.race([
      once(lines, 'line'),
      once(pool.child, 'exit').then(() => {
        throw new Error(`listener pool exited: ${pool.output.slice(-10).join('\n')}`);
      }),
    ])) as [string];
    return JSON.parse(line) as Record<string, unknown>;
  };
  const t0 = Date.now();
  const ready = (await next()) as {
    open: number;
    failed: number;
    failures: Record<string, number>;
    rampMs: number;
    headP50Ms: number;
    headP99Ms: number;
    headMaxMs: number;
    finalHosts: Record<string, number>;
  };
  const settledMs = Date.now() - t0;
  pool.child.stdin!.write('mark\n');
  await next();
  await sleep(readSeconds * 1000);
  pool.child.stdin!.write('mark\n');
  const window = (await next()) as { open: number; closed: number; below14k: number; minBytesPerSec: number; medianBytesPerSec: number };
  pool.child.stdin!.write('quit\n');

  const spread = Object.fromEntries(c.nodes.map((n) => [n.name, ready.finalHosts[n.ip] ?? 0]));
  const result = {
    bench: 'flash-crowd',
    variant: 'cluster',
    quick: args.quick,
    nodes: c.nodes.length,
    listeners: count,
    arrivalSeconds: seconds,
    machineBefore: before,
    machineAfter: machine(),
    gotStream: ready.open,
    failed: ready.failed,
    failures: ready.failures,
    allArrivedAndAnsweredMs: settledMs,
    headFromArrivalMs: { p50: ready.headP50Ms, p99: ready.headP99Ms, max: ready.headMaxMs },
    spread,
    afterwards: { readSeconds, ...window },
  };
  report(result, [
    `Flash crowd: ${count} listeners arriving over ${seconds} s at ${c.nodes.length} front doors (namespace cluster), following the 302 to /_stream; load ${before.loadavg}`,
    `  got the stream: ${ready.open}/${count} (${round((ready.open / count) * 100, 1)} %), failed ${ready.failed} ${JSON.stringify(ready.failures)}`,
    `  arrival -> stream response head: p50 ${ready.headP50Ms} ms, p99 ${ready.headP99Ms} ms, max ${ready.headMaxMs} ms; last answer ${settledMs} ms after the first arrival`,
    `  spread over nodes: ${Object.entries(spread).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `  ${readSeconds} s later: ${window.open} still open, ${window.closed} closed, ${window.below14k} below 14 kB/s (median ${window.medianBytesPerSec} B/s)`,
  ]);
});
