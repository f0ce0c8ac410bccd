import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectEtcd, type Etcd3 } from '../../src/coordination/client.js';
import { ensureIcecastSecrets } from '../../src/coordination/icecast-secrets.js';
import { MASTER_ELECTION_PREFIX, mountKey, nodeKey } from '../../src/coordination/keys.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { startBlackholeProxy, type BlackholeProxy } from '../support/blackhole-proxy.js';
import { nodeStatus } from '../support/fixtures.js';
import { freePort } from '../support/ports.js';
import { startProcess, type Managed } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

/**
 * radiod's first icecast.xml, with a real etcd (reached through a proxy the test can silence)
 * and no Icecast running: what radiod writes before and after its cluster view is loaded.
 */

const ROOT = new URL('../..', import.meta.url).pathname;
const RADIOD = join(ROOT, 'dist/radiod/main.js');
const MOUNTS = ['/one.mp3', '/two.mp3'];
const UPSTREAM_PORT = 9911;

let etcd: TestEtcd;
let admin: Etcd3;
let proxy: BlackholeProxy;
let dir: string;
const daemons: Managed[] = [];

function startRadiod(name: string, etcdUrl: string, configPath: string, icecastPort: number): Managed {
  const p = startProcess(
    'node',
    [
      RADIOD,
      '--etcd-urls', etcdUrl,
      '--domain', 'radio.test',
      '--name', name,
      '--ip', '127.0.0.1',
      '--metrics-listen', 'off',
      '--icecast-config', configPath,
      '--icecast-port', String(icecastPort),
      '--icecast-bind', '127.0.0.1',
      '--icecast-logdir', join(dir, 'log'),
      '--icecast-pidfile', join(dir, `${name}.pid`),
      '--lease-ttl', '4',
      '--status-interval', '500',
      // Relays straight from the master's Icecast: the config names it, which the tests read.
      '--relay-via', 'direct',
      '--log-level', 'info',
    ],
    { cwd: ROOT },
  );
  daemons.push(p);
  return p;
}

/** The `icecast config written` events radiod logged so far. */
function configWrites(p: Managed): { mounts: number }[] {
  return p.output.flatMap((line) => {
    try {
      const event = JSON.parse(line) as { msg?: string; mounts?: number };
      return event.msg === 'icecast config written' ? [{ mounts: event.mounts ?? -1 }] : [];
    } catch {
      return [];
    }
  });
}

const relaysAll = (xml: string) =>
  MOUNTS.every((m) => xml.includes(`<local-mount>/_relay${m}</local-mount>`)) && xml.includes(`<port>${UPSTREAM_PORT}</port>`);

before(async () => {
  assert.ok(existsSync(RADIOD), `${RADIOD} is missing: build with npx tsc -p tsconfig.json first`);
  dir = await mkdtemp(join(tmpdir(), 'autoradio-radiod-startup-'));
  etcd = await startEtcd();
  const u = new URL(etcd.url);
  proxy = await startBlackholeProxy({ host: u.hostname, port: Number(u.port) });
  admin = connectEtcd({ etcdUrls: [etcd.url] });
  await ensureIcecastSecrets(admin);
  for (const path of MOUNTS) await admin.put(mountKey(path)).value(JSON.stringify({ path, username: 'source', password: 'pass-123456' }));
  // Another node is master: every mount becomes a relay of its Icecast.
  await admin.put(`${MASTER_ELECTION_PREFIX}other`).value(JSON.stringify({ name: 'other', addresses: ['127.0.0.1'], icecastPort: UPSTREAM_PORT }));
  // Status reports of other nodes large enough that the full read is far over the proxy's budget.
  const mounts: Record<string, number> = {};
  for (let i = 0; i < 1000; i++) mounts[`/station${Math.floor(i / 10)}/stream-${i % 10}-128k.mp3`] = i % 3;
  for (let i = 0; i < 10; i++) await admin.put(nodeKey(`peer${i}`)).value(JSON.stringify(nodeStatus(`peer${i}`, { mounts })));
});

after(async () => {
  await Promise.all(daemons.map((d) => d.stop('SIGTERM', 5000)));
  admin?.close();
  await proxy?.close();
  await etcd?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('at start radiod writes icecast.xml once, with the mounts, never an empty one first', async () => {
  const configPath = join(dir, 'fresh.xml');
  const radiod = startRadiod('fresh', etcd.url, configPath, await freePort());
  await waitFor('config with every relay', async () => relaysAll(await readFile(configPath, 'utf8').catch(() => '')), {
    timeoutMs: 20_000,
  });
  await waitFor('radiod started', () => radiod.output.some((l) => l.includes('"radiod started"')), { timeoutMs: 20_000 });
  assert.deepEqual(configWrites(radiod), [{ mounts: MOUNTS.length }], radiod.output.join('\n'));
});

test('while the first full read fails, the existing icecast.xml is left alone; it follows etcd once the read succeeds', async () => {
  const configPath = join(dir, 'kept.xml');
  const previous = '<icecast><!-- the previous run\'s config, with its relays --></icecast>\n';
  await writeFile(configPath, previous);
  // Small answers (the secrets) pass; the full read of the cluster is swallowed.
  proxy.blackholeAfter(16 * 1024);
  const radiod = startRadiod('kept', proxy.url, configPath, await freePort());
  // The view gives up waiting after 5 s and radiod goes on; the read keeps failing meanwhile.
  await waitFor('radiod started without its cluster view', () => radiod.output.some((l) => l.includes('"radiod started"')), {
    timeoutMs: 30_000,
  });
  assert.ok(radiod.output.some((l) => l.includes('cannot read cluster state from etcd')), radiod.output.join('\n'));
  assert.equal(await readFile(configPath, 'utf8'), previous, 'icecast.xml rewritten before the cluster was read');
  assert.deepEqual(configWrites(radiod), []);
  proxy.restore();
  await waitFor('config follows etcd after the read succeeded', async () => relaysAll(await readFile(configPath, 'utf8')), {
    timeoutMs: 30_000,
  });
  // The file is written before radiod logs the write, and its log comes through a pipe.
  await waitFor('the config write logged', () => configWrites(radiod).length > 0, { timeoutMs: 5000 });
  assert.deepEqual(configWrites(radiod), [{ mounts: MOUNTS.length }]);
});
