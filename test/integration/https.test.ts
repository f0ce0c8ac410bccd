import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect as netConnect, createServer as createNetServer, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { createServer as createHttpsServer } from 'node:https';
import { Resolver } from 'node:dns/promises';
import { once } from 'node:events';
import { Etcd3 } from 'etcd3';
import { createLogger } from '../../src/common/logger.js';
import { Presence } from '../../src/coordination/presence.js';
import { MASTER_ELECTION_PREFIX } from '../../src/coordination/keys.js';
import type { NodeStatus } from '../../src/coordination/node-status.js';
import { launchChromium, audioState } from '../support/browser.js';
import { startEtcd } from '../support/etcd.js';
import { startIcecast, icecastSources } from '../support/icecast.js';
import { run } from '../support/netns.js';
import { freePort } from '../support/ports.js';
import { startProcess, type Managed, collectLines } from '../support/processes.js';
import { sineSourceArgv } from '../support/cluster.js';
import { makeTestCa, replaceFile, type TestCa } from '../support/tls.js';
import { waitFor } from '../support/wait.js';

/**
 * HTTPS on the real redirectord with a certificate from a CA made here: real clients (curl,
 * ffmpeg, Chromium) play a mount through the front door with the CA trusted, a TLS source client
 * (ffmpeg -tls 1) reaches the master's Icecast, handshake garbage harms nothing, and the
 * operator's files are swapped under a running stream.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const REDIRECTORD = join(ROOT, 'dist/redirectord/main.js');
const RADIOCTL = join(ROOT, 'dist/radioctl/main.js');
const MOUNT = '/test.mp3';
const TLS_MOUNT = '/tls.mp3';
const DOMAIN = 'radio.test';
const NAMES = [DOMAIN, `*.${DOMAIN}`];

interface Setup {
  ca: TestCa;
  certFile: string;
  keyFile: string;
  httpPort: number;
  httpsPort: number;
  dnsPort: number;
  metricsPort: number;
  icecastUrl: string;
  tlsCreds: { username: string; password: string };
  log: string[];
  redirectord: Managed;
}

async function createMount(etcdUrl: string, path: string): Promise<{ username: string; password: string }> {
  const created = await run([process.execPath, RADIOCTL, 'create-mount', path, '--json', '--etcd-urls', etcdUrl], { timeoutMs: 20_000 });
  assert.equal(created.code, 0, `radioctl create-mount: ${created.stderr || created.stdout}`);
  const out = JSON.parse(created.stdout) as Record<string, unknown>;
  return (typeof out['mount'] === 'object' && out['mount'] ? out['mount'] : out) as { username: string; password: string };
}

async function setUp(t: TestContext): Promise<Setup> {
  const ca = await makeTestCa();
  t.after(() => ca.remove());
  const first = await ca.issue('first', NAMES);
  const certFile = join(ca.dir, 'live.crt');
  const keyFile = join(ca.dir, 'live.key');
  await replaceFile(first.certFile, certFile);
  await replaceFile(first.keyFile, keyFile);

  const etcd = await startEtcd();
  t.after(() => etcd.stop());
  const creds = await createMount(etcd.url, MOUNT);
  const tlsCreds = await createMount(etcd.url, TLS_MOUNT);
  const mountXml = (path: string, c: { username: string; password: string }) =>
    `<mount><mount-name>${path}</mount-name><username>${c.username}</username><password>${c.password}</password></mount>`;
  const icecast = await startIcecast({ extraXml: mountXml(MOUNT, creds) + mountXml(TLS_MOUNT, tlsCreds) });
  t.after(() => icecast.stop());
  const [cmd, ...args] = sineSourceArgv(`http://127.0.0.1:${icecast.port}${MOUNT}`, creds.username, creds.password);
  const ffmpeg = startProcess(cmd!, args);
  t.after(() => ffmpeg.stop('SIGTERM', 2000));
  await waitFor('the source on Icecast', async () => (await icecastSources(icecast.url).catch(() => new Map())).has(MOUNT), {
    timeoutMs: 15_000,
    intervalMs: 100,
  });

  // n1's presence and its master key, as radiod publishes them.
  const client = new Etcd3({ hosts: etcd.url });
  const presence = new Presence(client, 'n1', { ttlSeconds: 10, log: createLogger('test-presence', 'warn') });
  const masterLease = client.lease(10);
  t.after(async () => {
    await presence.stop();
    await masterLease.revoke().catch(() => undefined);
    client.close();
  });
  presence.start();
  const status: NodeStatus = {
    name: 'n1', addresses: ['127.0.0.1'], icecastPort: icecast.port, icecastOk: true, mounts: { [MOUNT]: 0 },
    listeners: 0, bandwidthKbps: 0, maxListeners: 100, maxBandwidthKbps: 0, reportedAt: Date.now(),
  };
  presence.publish(status);
  await masterLease.put(`${MASTER_ELECTION_PREFIX}${await masterLease.grant()}`).value(
    JSON.stringify({ name: 'n1', addresses: ['127.0.0.1'], icecastPort: icecast.port }),
  );

  const [httpPort, httpsPort, dnsPort, metricsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AUTORADIO_')));
  const redirectord = startProcess(process.execPath, [
    REDIRECTORD, '--domain', DOMAIN, '--name', 'n1', '--ip', '127.0.0.1', '--etcd-urls', etcd.url,
    '--http-port', String(httpPort), '--https-port', String(httpsPort), '--dns-port', String(dnsPort), '--dns-bind', '127.0.0.1',
    '--tls-cert', certFile, '--tls-key', keyFile,
    '--icecast-port', String(icecast.port), '--icecast-host', '127.0.0.1', '--metrics-listen', `127.0.0.1:${metricsPort}`,
  ], { cwd: ROOT, env });
  t.after(() => redirectord.stop('SIGTERM', 5000));
  const log: string[] = [];
  collectLines(redirectord.child.stdout, log);
  collectLines(redirectord.child.stderr, log);
  await waitFor('redirectord answering over HTTPS', async () => {
    if (redirectord.child.exitCode !== null) throw new Error(`redirectord exited: ${log.join('\n')}`);
    const r = await curl(ca, httpsPort, ['-o', '/dev/null', '-w', '%{http_code}', `https://${DOMAIN}:${httpsPort}${MOUNT}`]);
    return r.stdout === '302';
  }, { timeoutMs: 20_000, intervalMs: 200 }).catch((err: Error) => {
    throw new Error(`${err.message}\n${log.slice(-20).join('\n')}`);
  });
  return { ca, certFile, keyFile, httpPort, httpsPort, dnsPort, metricsPort, icecastUrl: icecast.url, tlsCreds, log, redirectord };
}

/** curl with the test CA trusted and the cluster's names pointing at loopback. */
function curl(ca: TestCa, httpsPort: number, args: string[], timeoutMs = 10_000) {
  return run(['curl', '-sS', '--cacert', ca.caFile, '--resolve', `${DOMAIN}:${httpsPort}:127.0.0.1`,
    '--resolve', `n1.${DOMAIN}:${httpsPort}:127.0.0.1`, ...args], { timeoutMs });
}

/** The serial of the certificate a new TLS connection is shown. */
async function servedSerial(s: Setup): Promise<string> {
  const socket = tlsConnect({ host: '127.0.0.1', port: s.httpsPort, servername: DOMAIN, ca: await readFile(s.ca.caFile) });
  try {
    await once(socket, 'secureConnect');
    return socket.getPeerCertificate().serialNumber;
  } finally {
    socket.destroy();
  }
}

async function serialOf(file: string): Promise<string> {
  const out = await run(['openssl', 'x509', '-in', file, '-noout', '-serial']);
  return out.stdout.trim().replace(/^serial=/, '').toUpperCase();
}

/** Resolves when the server has closed `socket`, with what it sent; fails after `timeoutMs`. */
async function closedBy(socket: Socket, timeoutMs: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => undefined);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    socket.destroy();
  }, timeoutMs);
  await new Promise<void>((resolve) => socket.once('close', () => resolve()));
  clearTimeout(timer);
  assert.ok(!timedOut, `the server kept the connection open ${timeoutMs} ms`);
  return Buffer.concat(chunks);
}

/** A real ClientHello, as a TLS client sends it (caught on a plain socket). */
async function captureClientHello(): Promise<Buffer> {
  const catcher = createNetServer();
  catcher.listen(0, '127.0.0.1');
  await once(catcher, 'listening');
  const port = (catcher.address() as { port: number }).port;
  const got = new Promise<Buffer>((resolve) => catcher.once('connection', (s: Socket) => s.once('data', (c: Buffer) => (resolve(c), s.destroy()))));
  const client = tlsConnect({ host: '127.0.0.1', port, servername: DOMAIN });
  client.on('error', () => undefined);
  const hello = await got;
  client.destroy();
  catcher.close();
  return hello;
}

function errorLines(log: readonly string[], allowed: RegExp): string[] {
  return log.filter((l) => {
    try {
      return ((JSON.parse(l) as { level?: number }).level ?? 0) >= 50 && !allowed.test(l);
    } catch {
      return true;
    }
  });
}

test('HTTPS on the front door: real clients, a TLS source, handshake abuse, certificate swaps', { timeout: 240_000 }, async (t) => {
  for (const f of [REDIRECTORD, RADIOCTL]) {
    if (!existsSync(f)) return void t.skip(`${f} not built (npx tsc -p tsconfig.json)`);
  }
  const s = await setUp(t);
  const base = `https://${DOMAIN}:${s.httpsPort}`;

  await t.test('a redirect over HTTPS names https://<node>.DOMAIN; over HTTP it stays as before', async () => {
    const r = await curl(s.ca, s.httpsPort, ['-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', `${base}${MOUNT}`]);
    assert.equal(r.stdout, `302 https://n1.${DOMAIN}:${s.httpsPort}/_stream${MOUNT}`);
    const plain = await run(['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', `http://127.0.0.1:${s.httpPort}${MOUNT}`]);
    assert.equal(plain.stdout, `302 http://127.0.0.1:${s.httpPort}/_stream${MOUNT}`);
    const playlist = await curl(s.ca, s.httpsPort, [`${base}${MOUNT}.m3u`]);
    assert.match(playlist.stdout, new RegExp(`^https://${DOMAIN.replace('.', '\\.')}:${s.httpsPort}/test\\.mp3$`, 'm'));
    const json = await curl(s.ca, s.httpsPort, [`${base}/status.json`]);
    const view = JSON.parse(json.stdout) as { servedBy: string; https?: { certificateExpiresInSeconds: number } };
    assert.equal(view.servedBy, 'n1');
    // The test CA's certificates are valid for 2 days.
    const left = view.https?.certificateExpiresInSeconds ?? 0;
    assert.ok(left > 86_400 && left <= 2 * 86_400, `certificate expiry in /status.json: ${JSON.stringify(view.https)}`);
    const metrics = await fetch(`http://127.0.0.1:${s.metricsPort}/metrics`).then((r) => r.text());
    const gauge = Number(/^autoradio_tls_certificate_expiry_seconds (\d+)$/m.exec(metrics)?.[1]);
    assert.ok(gauge > 86_400 && gauge <= 2 * 86_400, `expiry gauge ${gauge}`);
    const page = await curl(s.ca, s.httpsPort, ['-o', '/dev/null', '-w', '%{http_code}', `${base}/`]);
    assert.equal(page.stdout, '200');
  });

  await t.test("the cluster DNS answers <node>.DOMAIN with the node's address", async () => {
    const resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${s.dnsPort}`]);
    assert.deepEqual(await resolver.resolve4(`n1.${DOMAIN}`), ['127.0.0.1']);
  });

  await t.test('curl follows the redirect and plays the mount over HTTPS', async () => {
    const out = join(s.ca.dir, 'curl.mp3');
    const r = await curl(s.ca, s.httpsPort, ['-L', '--max-time', '3', '-o', out, `${base}${MOUNT}`], 15_000);
    // curl exits 28 when --max-time ends the endless stream.
    assert.equal(r.code, 28, r.stderr);
    const audio = await readFile(out);
    const bytes = audio.length;
    assert.ok(audio.includes(Buffer.of(0xff, 0xfb)), 'MPEG audio frame headers in the body');
    t.diagnostic(`curl received ${bytes} bytes in 3 s over HTTPS`);
    assert.ok(bytes > 16_000, `only ${bytes} bytes`);
  });

  await t.test('ffmpeg plays the mount over HTTPS with the CA trusted', async () => {
    // ffmpeg has no --resolve: it runs with a private /etc/hosts naming the cluster (its DNS
    // answering those names is checked above).
    const hosts = join(s.ca.dir, 'hosts');
    await writeFile(hosts, `127.0.0.1 localhost ${DOMAIN} n1.${DOMAIN}\n`);
    const pcm = join(s.ca.dir, 'ffmpeg.pcm');
    const r = await run(['unshare', '-m', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$@"', hosts,
      'ffmpeg', '-hide_banner', '-loglevel', 'error', '-nostdin', '-tls_verify', '1', '-ca_file', s.ca.caFile,
      '-i', `${base}${MOUNT}`, '-t', '2', '-f', 's16le', '-ac', '1', '-ar', '8000', '-y', pcm], { timeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stderr);
    const samples = (await readFile(pcm)).length / 2;
    t.diagnostic(`ffmpeg decoded ${samples} samples (8 kHz mono) over HTTPS`);
    assert.ok(samples >= 15_000, `only ${samples} samples`);
  });

  await t.test("a TLS source client (ffmpeg -tls 1) reaches the master's Icecast", async (st) => {
    // The same source as the plain one, with TLS on: `-tls 1` goes before the icecast:// target.
    const argv = sineSourceArgv(`http://127.0.0.1:${s.httpsPort}${TLS_MOUNT}`, s.tlsCreds.username, s.tlsCreds.password, 660);
    const source = startProcess(argv[0]!, [...argv.slice(1, -1), '-tls', '1', argv.at(-1)!]);
    st.after(() => source.stop('SIGTERM', 2000));
    await waitFor('the TLS source on Icecast', async () => (await icecastSources(s.icecastUrl).catch(() => new Map())).has(TLS_MOUNT), {
      timeoutMs: 15_000,
      intervalMs: 100,
    }).catch((err: Error) => {
      throw new Error(`${err.message}\n${source.output.join('\n')}\n${s.log.slice(-10).join('\n')}`);
    });
    assert.ok(s.log.some((l) => l.includes('source connection proxied to the master') && l.includes(TLS_MOUNT)));
  });

  await t.test('garbage, plain HTTP, 1-byte ClientHello fragments and silent clients harm nothing', async () => {
    const garbage = netConnect(s.httpsPort, '127.0.0.1');
    garbage.write(Buffer.alloc(4096, 0x41));
    assert.doesNotMatch((await closedBy(garbage, 5000)).toString('latin1'), /HTTP\/1/);

    const plain = netConnect(s.httpsPort, '127.0.0.1');
    plain.write(`GET ${MOUNT} HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`);
    assert.doesNotMatch((await closedBy(plain, 5000)).toString('latin1'), /HTTP\/1/, 'no HTTP answer on the TLS port');

    // A ClientHello one byte per write: the server still answers with its handshake.
    const hello = await captureClientHello();
    const slow = netConnect(s.httpsPort, '127.0.0.1');
    await once(slow, 'connect');
    const answered = new Promise<Buffer>((resolve) => slow.once('data', resolve));
    for (const byte of hello) {
      slow.write(Buffer.of(byte));
      await new Promise((r) => setImmediate(r));
    }
    assert.equal((await answered)[0], 0x16, 'a TLS handshake record');
    slow.destroy();

    // Silent clients are closed after the handshake timeout (10 s); meanwhile others are served.
    const silent = Array.from({ length: 20 }, () => netConnect(s.httpsPort, '127.0.0.1'));
    const closed = silent.map((c) => closedBy(c, 20_000));
    const during = await curl(s.ca, s.httpsPort, ['-o', '/dev/null', '-w', '%{http_code}', `${base}${MOUNT}`]);
    assert.equal(during.stdout, '302');
    const started = Date.now();
    await Promise.all(closed);
    t.diagnostic(`20 silent TLS clients closed ${Date.now() - started} ms after a served request`);
    assert.equal(s.redirectord.child.exitCode, null, 'redirectord still runs');
  });

  await t.test('Chromium plays <audio src="https://DOMAIN/mount"> on an https:// page', async (st) => {
    const page = `<!DOCTYPE html><html><body><audio id="player" src="${base}${MOUNT}" autoplay muted></audio></body></html>`;
    const pages = createHttpsServer({ cert: await readFile(s.certFile), key: await readFile(s.keyFile) }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(page);
    });
    pages.listen(0, '127.0.0.1');
    await once(pages, 'listening');
    st.after(() => {
      pages.closeAllConnections();
      pages.close();
    });
    const pagePort = (pages.address() as { port: number }).port;
    // Chromium trusts the served key by its SPKI hash (no system CA store to add to here) and
    // resolves the cluster's names to loopback.
    const spki = (await run(['sh', '-c', `openssl x509 -in "$0" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`, s.certFile])).stdout.trim();
    const { context } = await launchChromium(st, [
      `--ignore-certificate-errors-spki-list=${spki}`,
      `--host-resolver-rules=MAP ${DOMAIN} 127.0.0.1, MAP *.${DOMAIN} 127.0.0.1`,
    ]);
    const player = await context.newPage();
    const requests: string[] = [];
    player.on('request', (r) => requests.push(r.url()));
    await player.goto(`https://www.${DOMAIN}:${pagePort}/`, { timeout: 15_000 });
    const playing = await waitFor('the <audio> element playing', async () => {
      const a = await audioState(player, 'player');
      return a.t > 0.5 && a.ready >= 3 ? a : undefined;
    }, { timeoutMs: 20_000, intervalMs: 100 }).catch((err: Error) => {
      throw new Error(`${err.message}\nrequests: ${requests.join(' ')}`);
    });
    st.diagnostic(`audio currentTime ${playing.t.toFixed(2)} s from ${playing.src}`);
    assert.ok(requests.includes(`https://n1.${DOMAIN}:${s.httpsPort}/_stream${MOUNT}`), requests.join(' '));
  });

  await t.test('certificate files swapped: new connections see the new one, an open stream goes on, bad pairs are refused', async () => {
    const firstSerial = await serialOf(s.certFile);
    assert.equal(await servedSerial(s), firstSerial);
    const stream = tlsConnect({ host: '127.0.0.1', port: s.httpsPort, servername: `n1.${DOMAIN}`, ca: await readFile(s.ca.caFile) }) as TLSSocket;
    let received = 0;
    stream.on('data', (c: Buffer) => (received += c.length));
    stream.on('error', () => undefined);
    await once(stream, 'secureConnect');
    stream.write(`GET /_stream${MOUNT} HTTP/1.0\r\nHost: n1.${DOMAIN}\r\n\r\n`);
    await waitFor('the stream flowing', () => received > 8000);

    const second = await s.ca.issue('second', NAMES);
    await replaceFile(second.keyFile, s.keyFile);
    await replaceFile(second.certFile, s.certFile);
    const secondSerial = await serialOf(second.certFile);
    await waitFor('new connections shown the new certificate', async () => (await servedSerial(s)) === secondSerial, { timeoutMs: 15_000, intervalMs: 100 });
    const atSwap = received;
    await waitFor('the open stream still flowing after the swap', () => received > atSwap + 16_000, { timeoutMs: 10_000 });
    assert.ok(!stream.destroyed, 'the open stream was not cut');
    stream.destroy();

    // A corrupt certificate: refused with the reason, the last good one stays.
    await writeFile(join(s.ca.dir, 'corrupt.crt'), '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
    await replaceFile(join(s.ca.dir, 'corrupt.crt'), s.certFile);
    await waitFor('the corrupt certificate refused', () => s.log.some((l) => l.includes('AR_INVALID_CERTIFICATE') && l.includes('not a PEM X.509')), { timeoutMs: 15_000 });
    assert.equal(await servedSerial(s), secondSerial);

    // A certificate with another's key: refused.
    const third = await s.ca.issue('third', NAMES);
    await replaceFile(third.certFile, s.certFile);
    await waitFor('the mismatched pair refused', () => s.log.some((l) => l.includes('AR_INVALID_CERTIFICATE') && l.includes('does not match')), { timeoutMs: 15_000 });
    assert.equal(await servedSerial(s), secondSerial);
  });

  assert.deepEqual(errorLines(s.log, /TLS certificate refused/), [], 'redirectord logged errors');
});
