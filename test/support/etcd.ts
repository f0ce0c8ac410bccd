import { after, before } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectEtcd, type Etcd3 } from '../../src/coordination/client.js';
import { startProcess, type Managed } from './processes.js';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

/** A private single-member etcd on free loopback ports, with its own data dir. */
export interface TestEtcd {
  url: string;
  process: Managed;
  dataDir: string;
  /** SIGSTOP: connections stay up but nothing answers (a silent partition). */
  freeze(): void;
  thaw(): void;
  /** kill -9 then restart on the same data dir and ports. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(500) });
    const body = (await res.json()) as { health?: string };
    return body.health === 'true';
  } catch {
    return false;
  }
}

export async function startEtcd(): Promise<TestEtcd> {
  const dataDir = await mkdtemp(join(tmpdir(), 'autoradio-etcd-'));
  const clientPort = await freePort();
  const peerPort = await freePort();
  const url = `http://127.0.0.1:${clientPort}`;
  const name = `test-${clientPort}`;
  const args = [
    '--name', name,
    '--data-dir', dataDir,
    '--listen-client-urls', url,
    '--advertise-client-urls', url,
    '--listen-peer-urls', `http://127.0.0.1:${peerPort}`,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
    '--initial-cluster', `${name}=http://127.0.0.1:${peerPort}`,
    '--initial-cluster-state', 'new',
    '--initial-cluster-token', `autoradio-test-${clientPort}-${process.pid}`,
    '--heartbeat-interval', '100',
    '--election-timeout', '1000',
    '--log-level', 'warn',
  ];
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_')));
  const launch = () => startProcess('etcd', args, { env });
  const handle: TestEtcd = {
    url,
    dataDir,
    process: launch(),
    freeze: () => void handle.process.child.kill('SIGSTOP'),
    thaw: () => void handle.process.child.kill('SIGCONT'),
    async restart() {
      await handle.process.stop('SIGKILL');
      handle.process = launch();
      await waitFor('etcd healthy after restart', () => healthy(url), { timeoutMs: 15_000, intervalMs: 100 });
    },
    async stop() {
      handle.thaw();
      await handle.process.stop('SIGTERM', 3000);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor('etcd healthy', () => healthy(url), { timeoutMs: 15_000, intervalMs: 100 });
  } catch (err) {
    await handle.stop();
    throw new Error(`${(err as Error).message}\n${handle.process.output.join('\n')}`);
  }
  return handle;
}

/**
 * One etcd and one client for a whole test file: started before its first test, handed to
 * `ready`, stopped after its last.
 */
export function etcdPerFile(ready: (etcd: TestEtcd, client: Etcd3) => void): void {
  let etcd: TestEtcd | undefined;
  let client: Etcd3 | undefined;
  before(async () => {
    etcd = await startEtcd();
    client = connectEtcd({ etcdUrls: [etcd.url] });
    ready(etcd, client);
  });
  after(async () => {
    client?.close();
    await etcd?.stop();
  });
}
