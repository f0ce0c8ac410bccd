import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { pino } from 'pino';
import { connectEtcd, type Etcd3 } from '../../src/coordination/client.js';
import { mountKey, nodeKey } from '../../src/coordination/keys.js';
import type { Mount } from '../../src/coordination/mount.js';
import type { NodeStatus } from '../../src/coordination/node-status.js';
import { startEtcd, type TestEtcd } from '../../test/support/etcd.js';
import { freePort } from '../../test/support/ports.js';
import { waitFor } from '../../test/support/wait.js';
import { builtMain, onCleanup, startChild, stopChild } from './common.js';

/** A private etcd and a client to it, both stopped when the benchmark ends. */
export async function benchEtcd(): Promise<{ etcd: TestEtcd; client: Etcd3 }> {
  const etcd = await startEtcd();
  const client = connectEtcd({ etcdUrls: [etcd.url] });
  onCleanup(() => etcd.stop());
  onCleanup(() => client.close());
  return { etcd, client };
}

export const quietLog = pino({ level: 'silent' });

export function benchMount(path: string): Mount {
  return { path, username: 'source', password: randomBytes(12).toString('hex') };
}

/** Writes mounts straight under their keys (no per-write listing: fast for thousands). */
export async function putMounts(client: Etcd3, mounts: readonly Mount[], parallel = 50): Promise<void> {
  for (let i = 0; i < mounts.length; i += parallel) {
    await Promise.all(mounts.slice(i, i + parallel).map((m) => client.put(mountKey(m.path)).value(JSON.stringify(m)).exec()));
  }
}

/** A node that can take any number of listeners (no limits, so predictive load never says full). */
export function fakeNodeStatus(name: string, address: string, icecastPort: number, mounts: Record<string, number> = {}): NodeStatus {
  return {
    name,
    addresses: [address],
    icecastPort,
    icecastOk: true,
    mounts,
    listeners: Object.values(mounts).reduce((a, b) => a + b, 0),
    bandwidthKbps: 0,
    maxListeners: 0,
    maxBandwidthKbps: 0,
    reportedAt: Date.now(),
  };
}

/** A static node status without a lease: the benchmark's own node never goes away. */
export async function putNodeStatus(client: Etcd3, status: NodeStatus): Promise<void> {
  await client.put(nodeKey(status.name)).value(JSON.stringify(status)).exec();
}

export interface Redirectord {
  child: ChildProcess;
  pid: number;
  httpPort: number;
  dnsPort: number;
  url: string;
  output: string[];
  stop(): Promise<void>;
}

/** The real daemon (compiled), on loopback ports, against the benchmark's etcd. */
export async function startRedirectord(o: {
  etcdUrl: string;
  icecastPort?: number;
  name?: string;
  nodeArgs?: string[];
  /** More redirectord flags. */
  extraArgs?: string[];
  readyPath?: string;
}): Promise<Redirectord> {
  const httpPort = await freePort();
  const dnsPort = await freePort();
  const argv = [
    ...(o.nodeArgs ?? []),
    builtMain('redirectord'),
    '--domain', 'bench.test',
    '--name', o.name ?? 'bench1',
    '--ip', '127.0.0.1',
    '--etcd-urls', o.etcdUrl,
    '--http-port', String(httpPort),
    '--http-bind', '127.0.0.1',
    '--dns-port', String(dnsPort),
    '--dns-bind', '127.0.0.1',
    '--icecast-port', String(o.icecastPort ?? 9),
    '--log-level', 'warn',
    ...(o.extraArgs ?? []),
  ];
  const { child, output } = startChild(process.execPath, argv);
  const url = `http://127.0.0.1:${httpPort}`;
  const handle: Redirectord = {
    child,
    pid: child.pid!,
    httpPort,
    dnsPort,
    url,
    output,
    stop: () => stopChild(child, 'SIGTERM', 6000),
  };
  onCleanup(() => handle.stop());
  try {
    await waitFor(
      'redirectord answering',
      async () => {
        if (child.exitCode !== null) throw new Error(`redirectord exited ${child.exitCode}`);
        const res = await fetch(`${url}${o.readyPath ?? '/status.json'}`, { redirect: 'manual', signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        return o.readyPath ? res.status === 302 : res.ok;
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${output.slice(-20).join('\n')}`);
  }
  return handle;
}
