import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { freePort } from '../test/support/ports.js';
import { makeTestCa } from '../test/support/tls.js';
import { waitFor } from '../test/support/wait.js';
import { benchArgs, cpuSeconds, machine, median, numFlag, onCleanup, report, round, runBench, runToEnd } from './lib/common.js';
import { benchEtcd, startRedirectord } from './lib/fixture.js';
import { startNginx } from './lib/nginx.js';

/**
 * Full TLS handshakes per second on the front door's HTTPS port against nginx with the same
 * certificate (P-256 ECDSA from a test CA, no session reuse on either side), one worker each; the
 * client runs in its own process (bench/lib/handshake-client.ts). Handshakes per CPU-second of the
 * server is the figure that holds on a shared machine. Usage:
 *   node --import tsx bench/handshakes.ts [--quick] [--seconds N] [--rounds N] [--connections N]
 */

const args = benchArgs();
const seconds = numFlag(args, '--seconds', args.quick ? 3 : 10);
const rounds = numFlag(args, '--rounds', args.quick ? 1 : 3);
const connections = numFlag(args, '--connections', 16);
const NAME = 'bench.test';

interface Run {
  handshakes: number;
  errors: number;
  perSecond: number;
  cpuSeconds: number;
  perCpuSecond: number;
}

async function measure(port: number, pid: number, caFile: string): Promise<Run> {
  const cpu0 = cpuSeconds(pid);
  const out = await runToEnd(process.execPath, [
    '--import', 'tsx', join(import.meta.dirname, 'lib', 'handshake-client.ts'),
    '127.0.0.1', String(port), NAME, caFile, String(seconds), String(connections),
  ]);
  const cpu = cpuSeconds(pid) - cpu0;
  const { handshakes, errors } = JSON.parse(out.trim().split('\n').pop()!) as { handshakes: number; errors: number };
  return { handshakes, errors, perSecond: Math.round(handshakes / seconds), cpuSeconds: round(cpu), perCpuSecond: Math.round(handshakes / Math.max(cpu, 0.01)) };
}

function handshakeWorks(port: number, ca: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, servername: NAME, ca });
    s.once('secureConnect', () => (s.destroy(), resolve(true)));
    s.once('error', () => (s.destroy(), resolve(false)));
  });
}

function medianOf(runs: Run[]): Run {
  const perCpu = median(runs.map((r) => r.perCpuSecond));
  return runs.find((r) => r.perCpuSecond === perCpu) ?? runs[0]!;
}

runBench('handshakes', async () => {
  const loadBefore = machine();
  const ca = await makeTestCa();
  onCleanup(() => ca.remove());
  const pair = await ca.issue('server', [NAME, `*.${NAME}`]);
  const caPem = readFileSync(ca.caFile);
  const { etcd } = await benchEtcd();
  const httpsPort = await freePort();
  const rd = await startRedirectord({
    etcdUrl: etcd.url,
    extraArgs: ['--https-port', String(httpsPort), '--tls-cert', pair.certFile, '--tls-key', pair.keyFile],
  });
  await waitFor('redirectord HTTPS', () => handshakeWorks(httpsPort, caPem), { timeoutMs: 20_000, intervalMs: 100 });
  const nginx = await startNginx({ location: 'http://x/', extraHeaders: {}, keepalive: false, tls: pair });
  await waitFor('nginx HTTPS', () => handshakeWorks(nginx.port, caPem), { timeoutMs: 10_000, intervalMs: 100 });

  const runs = { redirectord: [] as Run[], nginx: [] as Run[] };
  for (let i = 0; i < rounds; i++) {
    runs.redirectord.push(await measure(httpsPort, rd.pid, ca.caFile));
    runs.nginx.push(await measure(nginx.port, nginx.workerPid, ca.caFile));
  }
  const r = medianOf(runs.redirectord);
  const n = medianOf(runs.nginx);
  const ratios = { perSecond: round(r.perSecond / Math.max(n.perSecond, 1)), perCpuSecond: round(r.perCpuSecond / Math.max(n.perCpuSecond, 1)) };
  report(
    { bench: 'handshakes', quick: args.quick, seconds, rounds, connections, machineBefore: loadBefore, machineAfter: machine(), redirectord: r, nginx: n, ratios, runs },
    [
      `TLS handshakes (P-256, no session reuse, ${connections} client loops, ${seconds} s x ${rounds}); load ${(loadBefore.loadavg as number[]).join(',')}`,
      `  redirectord: ${r.perSecond}/s, ${r.perCpuSecond} per CPU-second, ${r.errors} errors`,
      `  nginx:       ${n.perSecond}/s, ${n.perCpuSecond} per CPU-second, ${n.errors} errors`,
      `  ratio redirectord/nginx: ${ratios.perSecond} (per second), ${ratios.perCpuSecond} (per CPU-second)`,
    ],
  );
});
