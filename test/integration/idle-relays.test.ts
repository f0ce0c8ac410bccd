import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { launchIcecast, makeIcecastDir, type TestIcecast } from '../support/icecast.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';
import { nodeStatus } from '../support/fixtures.js';
import { createLogger } from '../../src/common/logger.js';
import { createMetrics } from '../../src/common/metrics.js';
import { ClusterView } from '../../src/coordination/cluster-view.js';
import { MASTER_ELECTION_PREFIX, mountKey, nodeKey } from '../../src/coordination/keys.js';
import type { OnAirMount } from '../../src/coordination/node-status.js';
import { IcecastController } from '../../src/radiod/icecast/controller.js';
import { SignalReloader } from '../../src/radiod/icecast/reloader.js';
import { IcecastPid } from '../../src/radiod/icecast/icecast-pid.js';
import { icecastAnswers } from '../../src/radiod/icecast/stats-poller.js';

/**
 * radiod's Icecast controller on a node that is not master, with a real etcd and a real Icecast
 * 2.4.4 whose relays pull from a stand-in front door that answers 404 (the master has no source).
 * An always-on relay asks every 2 s; once the master has reported the mount off air for the idle
 * delay (3 s here, 60 s in radiod) the relay waits for a listener and asks nothing; when the
 * master reports a source again, it pulls all the time again.
 */

const MOUNT = '/quiet.mp3';
let etcd: TestEtcd;
let client: Etcd3;
let frontDoor: Server;
let icecast: TestIcecast | undefined;
let view: ClusterView;
let controller: IcecastController;
let reports: NodeJS.Timeout;
let configPath = '';
const relayRequests: number[] = [];
let onAir: Record<string, OnAirMount> = {};

before(async () => {
  etcd = await startEtcd();
  client = new Etcd3({ hosts: etcd.url });
  await client.put(mountKey(MOUNT)).value(JSON.stringify({ path: MOUNT, username: 'source', password: 'secret-password-1' }));
  await client.put(`${MASTER_ELECTION_PREFIX}m`).value(JSON.stringify({ name: 'm', addresses: ['127.0.0.1'], icecastPort: 1 }));
  // The master reports every 500 ms, as node status rewrites reach every view.
  const report = () => void client.put(nodeKey('m')).value(JSON.stringify(nodeStatus('m', { onAir, reportedAt: Date.now() }))).catch(() => {});
  report();
  reports = setInterval(report, 500);

  frontDoor = createServer((req, res) => {
    if (req.url === `/_relay${MOUNT}`) relayRequests.push(Date.now());
    res.writeHead(404).end();
  });
  const doorPort = await freePort();
  await new Promise<void>((r) => frontDoor.listen(doorPort, '127.0.0.1', () => r()));

  const dir = await makeIcecastDir();
  const port = await freePort();
  configPath = join(dir, 'icecast.xml');
  const pidfile = join(dir, 'icecast.pid');
  const log = createLogger('test', 'warn');
  const secrets = { adminPassword: 'admin-password-1', relayPassword: 'relay-password-1' };
  view = new ClusterView(client, log);
  await view.start();
  controller = new IcecastController({
    source: view,
    node: {
      name: 'n1', addresses: ['127.0.0.1'], icecastPort: port, bindAddress: '127.0.0.1', hostname: 'radio.test', maxListeners: 50,
      relayVia: { host: '127.0.0.1', port: doorPort },
      paths: { basedir: '/usr/share/icecast2', logdir: join(dir, 'log'), webroot: '/usr/share/icecast2/web', adminroot: '/usr/share/icecast2/admin', pidfile },
    },
    secrets,
    configPath,
    reloader: new SignalReloader({ pid: new IcecastPid({ pidfile }), answers: () => icecastAnswers(`http://127.0.0.1:${port}`) }),
    log,
    metrics: createMetrics(undefined, 'radiod', 'n1', () => {}),
    idleRelayAfterMs: 3000,
  });
  await controller.start();
  icecast = await launchIcecast({ host: '127.0.0.1', port, dir, configPath, sourcePassword: 'unused', adminPassword: secrets.adminPassword });
  controller.icecastStarted();
});

after(async () => {
  clearInterval(reports);
  await controller?.stop();
  await view?.stop();
  await icecast?.stop();
  frontDoor?.close();
  client?.close();
  await etcd?.stop();
});

const onDemand = async () => /<on-demand>1<\/on-demand>/.test(await readFile(configPath, 'utf8'));
const requestsSince = (t: number) => relayRequests.filter((at) => at >= t).length;

test('a relay of a mount off air stops asking the master; a source brings the always-on relay back', { timeout: 60_000 }, async () => {
  // Off air, and not for long yet: the relay asks every 2 s.
  const t0 = Date.now();
  await waitFor('two relay attempts', () => requestsSince(t0) >= 2, { timeoutMs: 10_000, intervalMs: 50 });
  await waitFor('the relay rendered on demand', onDemand, { timeoutMs: 10_000, intervalMs: 100 });
  // Icecast rereads its config about a second after the reload; an attempt already due may run.
  await waitFor('no relay attempt for 6 s', () => {
    const last = relayRequests.at(-1) ?? 0;
    return Date.now() - last >= 6000;
  }, { timeoutMs: 20_000, intervalMs: 200 });

  onAir = { [MOUNT]: { since: Date.now() } };
  const t1 = Date.now();
  await waitFor('the relay rendered always-on', async () => !(await onDemand()), { timeoutMs: 10_000, intervalMs: 100 });
  await waitFor('the relay asking again', () => requestsSince(t1) >= 2, { timeoutMs: 15_000, intervalMs: 50 });
  assert.ok(requestsSince(t1) >= 2);
});
