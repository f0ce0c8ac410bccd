import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect as tlsConnect } from 'node:tls';
import { Resolver } from 'node:dns/promises';
import { once } from 'node:events';
import { Etcd3 } from 'etcd3';
import { createLogger } from '../../src/common/logger.js';
import { Presence } from '../../src/coordination/presence.js';
import { ACME_ACCOUNT_KEY, ACME_CERTIFICATE_KEY, ACME_CHALLENGE_PREFIX, ACME_ELECTION_PREFIX, MASTER_ELECTION_PREFIX } from '../../src/coordination/keys.js';
import { parseStoredCertificate, type StoredCertificate } from '../../src/coordination/acme.js';
import { startEtcd } from '../support/etcd.js';
import { startIcecast, icecastSources } from '../support/icecast.js';
import { run } from '../support/netns.js';
import { freePort } from '../support/ports.js';
import { startProcess, collectLines, type Managed } from '../support/processes.js';
import { sineSourceArgv } from '../support/cluster.js';
import { makeTestCa, type TestCa } from '../support/tls.js';
import { waitFor } from '../support/wait.js';
import { startPebble } from '../support/pebble.js';

/**
 * HTTPS by ACME against a real CA (pebble, validating DNS-01 for real against redirectord's DNS),
 * with real etcd and two real redirectords: the elected one orders the certificate for DOMAIN and
 * *.DOMAIN; killed (SIGKILL) while its order is pending, the other takes the election over and
 * orders with the same account; the front doors serve the issued certificate (curl and mpv with
 * pebble's CA trusted); pebble's short-lived certificates are renewed at two thirds of their
 * lifetime and the front door switches to the new one.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const REDIRECTORD = join(ROOT, 'dist/redirectord/main.js');
const RADIOCTL = join(ROOT, 'dist/radioctl/main.js');
const DOMAIN = 'radio.test';
const MOUNT = '/test.mp3';
/** Pebble's certificate lifetime here: renewal is due after 2/3 of it. */
const VALIDITY_SECONDS = 20;

interface Node {
  name: string;
  process: Managed;
  log: string[];
  httpsPort: number;
  dnsPort: number;
}

interface Setup {
  ca: TestCa;
  etcd: Etcd3;
  pebbleRoot: string;
  rootFile: string;
  pebbleDnsPort: number;
  etcdUrl: string;
  start(name: string, dnsPort?: number, extra?: string[]): Promise<Node>;
}

async function setUp(t: TestContext): Promise<Setup> {
  const ca = await makeTestCa();
  t.after(() => ca.remove());
  const testEtcd = await startEtcd();
  const etcd = new Etcd3({ hosts: testEtcd.url });

  // A mount with a source, and n1..n2 live with n1 as master: the stream mpv plays.
  const created = await run([process.execPath, RADIOCTL, 'create-mount', MOUNT, '--json', '--etcd-urls', testEtcd.url], { timeoutMs: 20_000 });
  assert.equal(created.code, 0, created.stderr);
  const out = JSON.parse(created.stdout) as Record<string, unknown>;
  const creds = (typeof out['mount'] === 'object' && out['mount'] ? out['mount'] : out) as { username: string; password: string };
  const icecast = await startIcecast({
    extraXml: `<mount><mount-name>${MOUNT}</mount-name><username>${creds.username}</username><password>${creds.password}</password></mount>`,
  });
  t.after(() => icecast.stop());
  const [cmd, ...args] = sineSourceArgv(`http://127.0.0.1:${icecast.port}${MOUNT}`, creds.username, creds.password);
  const ffmpeg = startProcess(cmd!, args);
  t.after(() => ffmpeg.stop('SIGTERM', 2000));
  await waitFor('the source on Icecast', async () => (await icecastSources(icecast.url).catch(() => new Map())).has(MOUNT), { timeoutMs: 15_000, intervalMs: 100 });
  const presence = new Presence(etcd, 'n1', { ttlSeconds: 10, log: createLogger('test-presence', 'warn') });
  const masterLease = etcd.lease(10);
  t.after(async () => {
    await presence.stop();
    await masterLease.revoke().catch(() => undefined);
    etcd.close();
  });
  // Hooks run in the order they were added: etcd stops after everything that uses it.
  const daemons: Managed[] = [];
  t.after(async () => {
    await Promise.all(daemons.map((d) => d.stop('SIGTERM', 5000)));
    await testEtcd.stop();
  });
  presence.start();
  presence.publish({
    name: 'n1', addresses: ['127.0.0.1'], icecastPort: icecast.port, icecastOk: true, mounts: { [MOUNT]: 0 },
    listeners: 0, bandwidthKbps: 0, maxListeners: 100, maxBandwidthKbps: 0, reportedAt: Date.now(),
  });
  await masterLease.put(`${MASTER_ELECTION_PREFIX}${await masterLease.grant()}`).value(
    JSON.stringify({ name: 'n1', addresses: ['127.0.0.1'], icecastPort: icecast.port }),
  );

  const pebbleDnsPort = await freePort();
  const pebble = await startPebble(t, ca, { dnsPort: pebbleDnsPort, validitySeconds: VALIDITY_SECONDS });
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AUTORADIO_')));

  async function start(name: string, dnsPort?: number, extra: string[] = []): Promise<Node> {
    const [httpPort, httpsPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
    const dns = dnsPort ?? (await freePort());
    const child = startProcess(process.execPath, [
      REDIRECTORD, '--domain', DOMAIN, '--name', name, '--ip', '127.0.0.1', '--etcd-urls', testEtcd.url,
      '--http-port', String(httpPort), '--https-port', String(httpsPort), '--dns-port', String(dns), '--dns-bind', '127.0.0.1',
      '--acme-directory', pebble.directory, '--acme-email', 'ops@example.org', '--acme-ca-file', ca.caFile,
      '--icecast-port', String(icecast.port), '--icecast-host', '127.0.0.1', '--metrics-listen', `127.0.0.1:${metricsPort}`, ...extra,
    ], { cwd: ROOT, env });
    daemons.push(child);
    const log: string[] = [];
    collectLines(child.child.stdout, log);
    collectLines(child.child.stderr, log);
    return { name, process: child, log, httpsPort, dnsPort: dns };
  }
  return { ca, etcd, etcdUrl: testEtcd.url, pebbleRoot: pebble.root, rootFile: pebble.rootFile, pebbleDnsPort, start };
}

async function storedCertificate(etcd: Etcd3): Promise<StoredCertificate | undefined> {
  const v = await etcd.get(ACME_CERTIFICATE_KEY).string();
  return v === null ? undefined : parseStoredCertificate(v);
}

function serialOf(pem: string): string {
  return new X509Certificate(pem).serialNumber.toUpperCase();
}

/** The certificate a new TLS connection to `port` is shown, checked against pebble's root. */
async function served(port: number, root: string): Promise<{ serial: string; san: string }> {
  const socket = tlsConnect({ host: '127.0.0.1', port, servername: DOMAIN, ca: root });
  try {
    await once(socket, 'secureConnect');
    const peer = socket.getPeerCertificate();
    return { serial: peer.serialNumber.toUpperCase(), san: peer.subjectaltname ?? '' };
  } finally {
    socket.destroy();
  }
}

function failWith(node: Node) {
  return (err: Error) => {
    throw new Error(`${err.message}\n${node.name}:\n${node.log.slice(-25).join('\n')}`);
  };
}

async function challengeValues(etcd: Etcd3): Promise<string[]> {
  return Object.values(await etcd.getAll().prefix(ACME_CHALLENGE_PREFIX).strings()).sort();
}

async function candidates(etcd: Etcd3): Promise<number> {
  return (await etcd.getAll().prefix(ACME_ELECTION_PREFIX).keys()).length;
}

test('ACME: one elected orderer, DNS-01 through the cluster DNS, takeover after SIGKILL, renewal, curl and mpv', { timeout: 150_000 }, async (t) => {
  for (const f of [REDIRECTORD, RADIOCTL]) if (!existsSync(f)) return void t.skip(`${f} not built (npx tsc -p tsconfig.json)`);
  const s = await setUp(t);
  let n2!: Node;
  let issued!: StoredCertificate;

  await t.test("SIGKILL of the orderer mid-order: the other node takes the election over and orders with the same account", async () => {
    // A placeholder candidate leads until both nodes are queued behind it, so n1 (queued first)
    // is the orderer and pebble validates against n2's DNS, which knows the values only from etcd.
    const holder = s.etcd.lease(30);
    await holder.put(`${ACME_ELECTION_PREFIX}0`).value('{"name":"placeholder"}');
    const n1 = await s.start('n1');
    await waitFor('n1 queued for ACME', async () => (await candidates(s.etcd)) === 2, { timeoutMs: 20_000 }).catch(failWith(n1));
    n2 = await s.start('n2', s.pebbleDnsPort);
    await waitFor('n2 queued for ACME', async () => (await candidates(s.etcd)) === 3, { timeoutMs: 20_000 }).catch(failWith(n2));
    assert.equal(await storedCertificate(s.etcd), undefined, 'nobody orders while another candidate leads');
    await holder.revoke();

    const values = await waitFor('n1 publishing its DNS-01 values', async () => {
      const v = await challengeValues(s.etcd);
      return v.length === 2 && v;
    }, { timeoutMs: 20_000, intervalMs: 20 }).catch(failWith(n1));
    const account = await s.etcd.get(ACME_ACCOUNT_KEY).string();
    assert.ok(account, 'the account is in etcd before the order');
    const resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${n2.dnsPort}`]);
    const txt = await waitFor('n2 answering the values', async () => {
      const got = (await resolver.resolveTxt(`_acme-challenge.${DOMAIN}`).catch(() => [])).map((r) => r.join('')).sort();
      return got.length === 2 && got;
    }, { timeoutMs: 5000 });
    assert.deepEqual(txt, values);
    n1.process.child.kill('SIGKILL');
    await n1.process.exited;
    assert.equal(await storedCertificate(s.etcd), undefined, 'n1 died with its order pending');

    issued = await waitFor('a certificate ordered by n2', async () => {
      const c = await storedCertificate(s.etcd);
      return c?.orderedBy === 'n2' && c;
    }, { timeoutMs: 40_000, intervalMs: 100 }).catch(failWith(n2));
    assert.equal(await s.etcd.get(ACME_ACCOUNT_KEY).string(), account, 'the new orderer reused the account');
    assert.equal(n2.log.filter((l) => l.includes('ordering the cluster certificate')).length, 1);
    assert.deepEqual(await challengeValues(s.etcd), [], 'no challenge values left behind');
    const leaf = new X509Certificate(issued.cert);
    assert.match(leaf.subjectAltName ?? '', new RegExp(`DNS:${DOMAIN}`));
    assert.match(leaf.subjectAltName ?? '', new RegExp(`DNS:\\*\\.${DOMAIN}`));
    assert.ok(leaf.verify(new X509Certificate(issued.cert.slice(issued.cert.indexOf('-----BEGIN', 10))).publicKey), 'the chain carries the issuing intermediate');
  });

  await t.test("the front door serves the issued certificate: curl verifies it with pebble's root", async () => {
    const got = await waitFor('n2 serving the certificate', async () => {
      const r = await served(n2.httpsPort, s.pebbleRoot).catch(() => undefined);
      return r?.serial === serialOf(issued.cert) && r;
    }, { timeoutMs: 10_000, intervalMs: 100 }).catch(failWith(n2));
    assert.match(got.san, /\*\.radio\.test/);
    const r = await run(['curl', '-sS', '--cacert', s.rootFile, '--resolve', `${DOMAIN}:${n2.httpsPort}:127.0.0.1`, '-o', '/dev/null', '-w', '%{http_code} %{ssl_verify_result}',
      `https://${DOMAIN}:${n2.httpsPort}/status.json`], { timeoutMs: 10_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '200 0');
  });

  await t.test("a node with operator files serves them, not the cluster's certificate", async () => {
    const operator = await s.ca.issue('operator', [DOMAIN, `*.${DOMAIN}`]);
    const n3 = await s.start('n3', undefined, ['--tls-cert', operator.certFile, '--tls-key', operator.keyFile]);
    const operatorSerial = serialOf(await readFile(operator.certFile, 'utf8'));
    const caPem = await readFile(s.ca.caFile, 'utf8');
    await waitFor('n3 serving the operator certificate', async () => (await served(n3.httpsPort, caPem).catch(() => undefined))?.serial === operatorSerial, {
      timeoutMs: 20_000, intervalMs: 100,
    }).catch(failWith(n3));
    // n3 has also read the cluster's certificate by now, and still serves the operator's.
    await waitFor("n3 holding the cluster's certificate too", () => n3.log.some((l) => l.includes('TLS certificate loaded from etcd')), { timeoutMs: 10_000 })
      .catch(failWith(n3));
    assert.equal((await served(n3.httpsPort, caPem)).serial, operatorSerial);
    assert.notEqual(operatorSerial, serialOf((await storedCertificate(s.etcd))!.cert));
    await n3.process.stop('SIGTERM', 5000);
  });

  await t.test('radioctl status --json shows the cluster certificate and its expiry, never the key', async () => {
    const json = await run([process.execPath, RADIOCTL, 'status', '--json', '--etcd-urls', s.etcdUrl], { timeoutMs: 20_000 });
    assert.equal(json.code, 0, json.stderr);
    const status = JSON.parse(json.stdout) as { certificate?: { domain: string; notAfter: string; expiresInSeconds: number; orderedBy: string } };
    const stored = (await storedCertificate(s.etcd))!;
    const leaf = new X509Certificate(stored.cert);
    assert.equal(status.certificate?.domain, DOMAIN);
    assert.equal(status.certificate?.notAfter, new Date(leaf.validTo).toISOString());
    assert.ok(status.certificate!.expiresInSeconds <= VALIDITY_SECONDS);
    assert.doesNotMatch(json.stdout, /PRIVATE KEY/);
    // The human line comes from the same summary (describeCertificate, tested in test/unit).
  });

  await t.test('mpv plays the stream over HTTPS with the CA trusted and decodes audio', async () => {
    const hosts = join(s.ca.dir, 'hosts');
    await writeFile(hosts, `127.0.0.1 localhost ${DOMAIN} n1.${DOMAIN} n2.${DOMAIN}\n`);
    const mpvIn = (args: string[]) => run(['unshare', '-m', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$@"', hosts,
      'mpv', '--no-config', '--no-video', '--ao=null', '--tls-verify=yes', '--length=2', ...args, `https://${DOMAIN}:${n2.httpsPort}${MOUNT}`], { timeoutMs: 30_000 });
    // Without pebble's root mpv refuses the certificate: the trust below is what makes it play.
    const untrusted = await mpvIn([]);
    assert.notEqual(untrusted.code, 0, 'mpv played with an untrusted certificate');
    const logFile = join(s.ca.dir, 'mpv.log');
    const r = await mpvIn([`--tls-ca-file=${s.rootFile}`, `--log-file=${logFile}`]);
    const log = await readFile(logFile, 'utf8');
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}\n${log.slice(-3000)}`);
    for (const l of log.split('\n').filter((l) => /AO: |Audio --aid|Exiting|TLS|tls/.test(l))) t.diagnostic(l.trim());
    // mpv names the decoded track and opens its audio output only once frames decode.
    assert.match(log, /Audio --aid=1 .*mp3/, 'mpv found the MP3 track');
    assert.match(log, /AO: \[null\] \d+Hz/, 'mpv decoded audio into its output');
    assert.match(log, /Exiting\.\.\. \(End of file\)|EOF reached|end of file/i, 'mpv stopped at --length, not on an error');
  });

  await t.test("pebble's short-lived certificate is renewed at 2/3 of its lifetime and served", async () => {
    const leaf = new X509Certificate(issued.cert);
    const lifetime = new Date(leaf.validTo).getTime() - new Date(leaf.validFrom).getTime();
    t.diagnostic(`pebble certificate lifetime ${lifetime / 1000} s`);
    const renewed = await waitFor('a renewed certificate', async () => {
      const c = await storedCertificate(s.etcd);
      return c && serialOf(c.cert) !== serialOf(issued.cert) && c;
    }, { timeoutMs: VALIDITY_SECONDS * 1000 + 10_000, intervalMs: 200 }).catch(failWith(n2));
    const renewedAt = Date.parse(renewed.storedAt);
    assert.ok(renewedAt < new Date(leaf.validTo).getTime(), 'renewed before the old one expired');
    assert.ok(renewedAt >= new Date(leaf.validFrom).getTime() + (lifetime * 2) / 3 - 1000, 'not renewed before 2/3 of the lifetime');
    await waitFor('n2 serving the renewed certificate', async () => (await served(n2.httpsPort, s.pebbleRoot).catch(() => undefined))?.serial === serialOf(renewed.cert), {
      timeoutMs: 5000, intervalMs: 100,
    }).catch(failWith(n2));
  });

  await t.test('a certificate with a foreign key in etcd is refused by the front door (last good kept) and ordered again', async () => {
    // A certificate whose renewal is at least 6 s away, so that a replacement before its renewal
    // time can only come from the refusal (pebble's certificates here renew every ~13 s).
    const renewalOf = (c: StoredCertificate) => {
      const leaf = new X509Certificate(c.cert);
      const from = new Date(leaf.validFrom).getTime();
      return from + ((new Date(leaf.validTo).getTime() - from) * 2) / 3;
    };
    const good = await waitFor('a certificate with its renewal 6 s away', async () => {
      const c = await storedCertificate(s.etcd);
      return c && renewalOf(c) - Date.now() > 6000 && c;
    }, { timeoutMs: 20_000, intervalMs: 100 });
    const foreign = await s.ca.issue('foreign', [DOMAIN]);
    const broken: StoredCertificate = { ...good, key: await readFile(foreign.keyFile, 'utf8'), orderedBy: 'hand-edit' };
    const logFrom = n2.log.length;
    await s.etcd.put(ACME_CERTIFICATE_KEY).value(JSON.stringify(broken));
    const refusal = await waitFor('n2 refusing the stored pair', () => n2.log.slice(logFrom).find((l) => l.includes('TLS certificate refused')), { timeoutMs: 5000 })
      .catch(failWith(n2));
    assert.match(refusal, /AR_INVALID_CERTIFICATE/);
    assert.match(refusal, /the key does not match the certificate/);
    assert.match(refusal, /acme\/certificate/);
    assert.equal((await served(n2.httpsPort, s.pebbleRoot)).serial, serialOf(good.cert), 'the last good pair still serves');
    const replaced = await waitFor('a good certificate ordered in its place', async () => {
      const c = await storedCertificate(s.etcd);
      return c && c.orderedBy === 'n2' && serialOf(c.cert) !== serialOf(good.cert) && c;
    }, { timeoutMs: 15_000, intervalMs: 100 }).catch(failWith(n2));
    assert.ok(Date.parse(replaced.storedAt) < renewalOf(good), 'ordered because the stored pair was refused, not because renewal was due');
    await waitFor('n2 serving it', async () => (await served(n2.httpsPort, s.pebbleRoot).catch(() => undefined))?.serial === serialOf(replaced.cert), {
      timeoutMs: 5000, intervalMs: 100,
    }).catch(failWith(n2));
  });
});
