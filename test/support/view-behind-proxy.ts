import { pino } from 'pino';
import { connectEtcd, type Etcd3 } from '../../src/coordination/client.js';
import { ClusterView } from '../../src/coordination/cluster-view.js';
import { startEtcd, type TestEtcd } from './etcd.js';
import { startBlackholeProxy, type BlackholeProxy } from './blackhole-proxy.js';

/** A private etcd, a cluster view that reaches it through a cuttable proxy, and a direct admin client. */
export interface ViewBehindProxy {
  etcd: TestEtcd;
  proxy: BlackholeProxy;
  /** Talks to etcd directly, never through the proxy. */
  admin: Etcd3;
  viewClient: Etcd3;
  view: ClusterView;
  stop(): Promise<void>;
}

export async function startViewBehindProxy(): Promise<ViewBehindProxy> {
  const log = pino({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent' });
  const etcd = await startEtcd();
  const u = new URL(etcd.url);
  const proxy = await startBlackholeProxy({ host: u.hostname, port: Number(u.port) });
  const admin = connectEtcd({ etcdUrls: [etcd.url] });
  const viewClient = connectEtcd({ etcdUrls: [proxy.url] });
  const view = new ClusterView(viewClient, log);
  await view.start();
  return {
    etcd,
    proxy,
    admin,
    viewClient,
    view,
    async stop() {
      await view.stop();
      viewClient.close();
      admin.close();
      await proxy.close();
      await etcd.stop();
    },
  };
}
