/**
 * Helper for transcoder-manager.test.ts (not a test itself): one TranscoderManager with its own
 * etcd client and cluster view, in a process the test can SIGKILL like a crashing radiod.
 * Usage: node --import tsx test/integration/transcoder-manager-child.ts ETCD_URL NODE_NAME TTL [WORK_DIR]
 */
import { pino } from 'pino';
import { connectEtcd } from '../../src/coordination/client.js';
import { ClusterView } from '../../src/coordination/cluster-view.js';
import { Elector } from '../../src/coordination/elector.js';
import { createMetrics } from '../../src/common/metrics.js';
import { TranscoderManager } from '../../src/radiod/transcoder/manager.js';

const [url, nodeName, ttl, workDir] = process.argv.slice(2) as [string, string, string, string | undefined];
const log = pino({ level: 'info', base: { node: nodeName } }, pino.destination(2));
const client = connectEtcd({ etcdUrls: [url] });
const view = new ClusterView(client, log);
await view.start();
const elector = new Elector(client, { ttlSeconds: Number(ttl), log });
elector.start();
const manager = new TranscoderManager({
  elector,
  state: view,
  nodeName,
  liquidsoapPath: 'liquidsoap',
  log,
  metrics: createMetrics(undefined, 'radiod', nodeName, () => {}),
  ...(workDir ? { workDir } : {}),
});
manager.start();
process.stdout.write(`${JSON.stringify({ started: nodeName })}\n`);
process.on('SIGTERM', () => {
  void manager.stop().then(async () => {
    await elector.stop();
    await view.stop();
    client.close();
    process.exit(0);
  });
});
