import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../support/wait.js';
import { freePort } from '../support/ports.js';
import { startProcess, type Managed } from '../support/processes.js';
import {
  basicAuth,
  ffmpegSource,
  icecastSources,
  listen,
  radioctl,
  rawExchange,
  startRedirectord,
  startStack,
  startStatsdSink,
  type StatsdSink,
  type Daemon,
  type Stack,
} from './hardening-harness.js';

/**
 * Secrets stay secret (pages, JSON, logs, statsd, errors), Icecast's own checks hold through the
 * proxy (wrong password, mount takeover), its admin interface stays closed except metadata, and
 * etcd with X.509 client certificates works end to end.
 */

let stack: Stack;
let statsd: StatsdSink;
const procs: Managed[] = [];
let port: number;
const MOUNT = '/live.mp3';

before(async () => {
  statsd = await startStatsdSink();
  stack = await startStack({
    mountPaths: [MOUNT, '/other.mp3'],
    redirectord: { extraArgs: ['--statsd', `127.0.0.1:${statsd.port}`], logLevel: 'debug' },
  });
  port = stack.redirectord.httpPort;
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  await stack?.stop();
  statsd?.close();
});

const cred = () => stack.mounts[0]!;
const sourceUrl = (password: string, mount = MOUNT) => `icecast://${cred().username}:${password}@127.0.0.1:${port}${mount}`;

test('a wrong source password through the front door forwards no audio', async () => {
  const bad = ffmpegSource(sourceUrl('wrong-password'));
  procs.push(bad);
  const code = await Promise.race([bad.exited, new Promise((r) => setTimeout(() => r('running'), 10_000))]);
  assert.notEqual(code, 0, 'ffmpeg with a wrong password was accepted');
  assert.notEqual(code, 'running', 'ffmpeg with a wrong password is still streaming');
  assert.ok(!(await icecastSources(stack.icecast)).has(MOUNT), 'Icecast shows a source');
  // Another mount's password does not open this one.
  const other = stack.mounts[1]!;
  const r = await rawExchange(port, [
    `SOURCE ${MOUNT} HTTP/1.0\r\nAuthorization: ${basicAuth(other.username, other.password)}\r\nContent-Type: audio/mpeg\r\n\r\n` + 'a'.repeat(8000),
  ], { timeoutMs: 6000 });
  assert.match(r.data.toString('latin1'), /HTTP\/1\.[01] 401/);
  assert.ok(!(await icecastSources(stack.icecast)).has(MOUNT));
});

test('a second source cannot take over a mount another source holds', async () => {
  const first = ffmpegSource(sourceUrl(cred().password));
  procs.push(first);
  await waitFor('first source live', async () => (await icecastSources(stack.icecast)).has(MOUNT), { timeoutMs: 10_000 });
  assert.ok((await listen(`http://127.0.0.1:${port}/_stream${MOUNT}`, 16_000, 8000)) >= 16_000);

  const second = ffmpegSource(sourceUrl(cred().password));
  procs.push(second);
  const code = await Promise.race([second.exited, new Promise((r) => setTimeout(() => r('running'), 10_000))]);
  assert.notEqual(code, 'running', 'the second source is still connected');
  assert.notEqual(code, 0);
  assert.equal(first.child.exitCode, null, 'the first source was dropped');
  // The first keeps streaming: fresh audio arrives after the second gave up.
  assert.ok((await listen(`http://127.0.0.1:${port}/_stream${MOUNT}`, 80_000, 10_000)) >= 80_000);
  assert.ok((await icecastSources(stack.icecast)).has(MOUNT));
});

test('Icecast admin is closed through redirectord except /admin/metadata with the mount credentials', async () => {
  const admin = basicAuth('admin', stack.icecast.adminPassword);
  // listclients is the front door's own answer (access-log.test.ts), never Icecast's.
  for (const path of ['/admin/stats', `/admin/killsource?mount=${MOUNT}`, '/admin/listmounts', '/admin/', '/admin/listclients.xsl']) {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: admin } });
    const body = await res.text();
    assert.equal(res.status, 403, path);
    assert.doesNotMatch(body, /icestats|<\?xml/);
    // The same credentials work on Icecast itself: the 403 is redirectord's doing.
    if (path === '/admin/stats') assert.equal((await fetch(`${stack.icecast.url}${path}`, { headers: { authorization: admin } })).status, 200);
  }
  assert.ok((await icecastSources(stack.icecast)).has(MOUNT), 'killsource got through');

  const meta = (auth: string, song: string) =>
    fetch(`http://127.0.0.1:${port}/admin/metadata?mode=updinfo&mount=${encodeURIComponent(MOUNT)}&song=${encodeURIComponent(song)}`, {
      headers: { authorization: auth },
    });
  const wrong = await meta(basicAuth(cred().username, 'nope'), 'Hijacked');
  assert.equal(wrong.status, 401);
  await wrong.text();
  const ok = await meta(basicAuth(cred().username, cred().password), 'Hello Secure World');
  assert.equal(ok.status, 200);
  await ok.text();
  await waitFor('title updated', async () => (await icecastSources(stack.icecast)).get(MOUNT)?.title === 'Hello Secure World', {
    timeoutMs: 5000,
  });
});

test('source credentials never appear in pages, JSON, playlists, metrics, logs, statsd or errors', async () => {
  const secrets = [
    cred().password,
    stack.mounts[1]!.password,
    stack.icecast.adminPassword,
    basicAuth(cred().username, cred().password).slice(6),
  ];
  const bodies: [string, string][] = [];
  for (const path of ['/', '/status.json', `${MOUNT}.m3u`, `${MOUNT}.pls`, `${MOUNT}.xspf`, '/nope.mp3', '/admin/stats', '/_stream/admin/x']) {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    bodies.push([path, JSON.stringify([...res.headers]) + (await res.text())]);
  }
  bodies.push(['/metrics', await (await fetch(`http://127.0.0.1:${stack.redirectord.metricsPort}/metrics`)).text()]);
  for (const args of [['list-mounts'], ['status'], ['--json', 'list-mounts'], ['--json', 'status'], ['create-mount', MOUNT], ['backup']]) {
    const r = await radioctl([...stack.etcdArgs, ...args]);
    // backup is the one command meant to carry passwords (it restores them).
    if (args[0] !== 'backup') bodies.push([`radioctl ${args.join(' ')}`, r.stdout + r.stderr]);
  }
  await waitFor('statsd packets', () => statsd.lines.length > 5);
  bodies.push(['statsd', statsd.lines.join('\n')]);
  bodies.push(['redirectord stdout', stack.redirectord.lines.join('\n')]);
  bodies.push(['redirectord stderr', stack.redirectord.stderr.join('\n')]);
  for (const [where, text] of bodies) {
    for (const s of secrets) assert.ok(!text.includes(s), `a secret appears in ${where}`);
  }
  // The logs saw source connections (at debug level), so the absence above means something.
  assert.ok(stack.redirectord.lines.some((l) => l.includes('source connection proxied to the master')));
  assert.ok(!stack.redirectord.lines.some((l) => /authorization/i.test(l) && !l.includes('[redacted]')));
});

// ---- etcd with X.509 client certificates ----

interface Pki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

async function makePki(): Promise<Pki> {
  const dir = await mkdtemp(join(tmpdir(), 'autoradio-pki-'));
  const f = (n: string) => join(dir, n);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '1', '-subj', '/CN=autoradio test CA');
  const leaf = async (name: string, cn: string, ext: string) => {
    await writeFile(f(`${name}.ext`), ext);
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`);
    ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial',
      '-out', f(`${name}.crt`), '-days', '1', '-extfile', f(`${name}.ext`));
  };
  await leaf('server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  await leaf('client', 'autoradio', 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    ca: f('ca.crt'),
    serverCert: f('server.crt'),
    serverKey: f('server.key'),
    clientCert: f('client.crt'),
    clientKey: f('client.key'),
  };
}

test('etcd with X.509 client certificates: radioctl and redirectord work; without a client cert radioctl says why', async (t) => {
  const pki = await makePki();
  const dataDir = await mkdtemp(join(tmpdir(), 'autoradio-etcd-tls-'));
  const clientPort = await freePort();
  const peerPort = await freePort();
  const url = `https://127.0.0.1:${clientPort}`;
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_')));
  const etcd = startProcess('etcd', [
    '--name', 'tls', '--data-dir', dataDir,
    '--listen-client-urls', url, '--advertise-client-urls', url,
    '--listen-peer-urls', `http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
    '--initial-cluster', `tls=http://127.0.0.1:${peerPort}`, '--initial-cluster-state', 'new',
    '--initial-cluster-token', `tls-${clientPort}`, '--log-level', 'warn',
    '--client-cert-auth', '--trusted-ca-file', pki.ca, '--cert-file', pki.serverCert, '--key-file', pki.serverKey,
  ], { env });
  let redirectord: Daemon | undefined;
  t.after(async () => {
    await redirectord?.stop();
    await etcd.stop('SIGTERM', 3000);
    await rm(dataDir, { recursive: true, force: true });
    await rm(pki.dir, { recursive: true, force: true });
  });
  const tls = ['--etcd-urls', url, '--etcd-ca', pki.ca, '--etcd-cert', pki.clientCert, '--etcd-key', pki.clientKey];

  const created = await waitFor('radioctl create-mount over TLS', async () => {
    const r = await radioctl([...tls, 'create-mount', '/tls.mp3']);
    return r.code === 0 ? r : undefined;
  }, { timeoutMs: 15_000, intervalMs: 300 });
  assert.match(created.stdout, /\/tls\.mp3/);
  const list = await radioctl([...tls, 'list-mounts']);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /\/tls\.mp3/);

  // Without the client certificate etcd refuses the handshake; radioctl says so in one line.
  const noCert = await radioctl(['--etcd-urls', url, '--etcd-ca', pki.ca, 'list-mounts']);
  assert.notEqual(noCert.code, 0);
  assert.equal(noCert.stderr.trim().split('\n').length, 1, noCert.stderr);
  assert.match(noCert.stderr, /^radioctl: etcd is unreachable at https:.*--etcd-cert and --etcd-key/);
  // And a certificate without its key is a usage error, not a hang.
  const half = await radioctl(['--etcd-urls', url, '--etcd-ca', pki.ca, '--etcd-cert', pki.clientCert, 'list-mounts']);
  assert.notEqual(half.code, 0);
  assert.match(half.stderr, /--etcd-cert and --etcd-key/);

  redirectord = await startRedirectord({
    etcdUrls: url,
    icecastPort: await freePort(),
    extraArgs: ['--etcd-ca', pki.ca, '--etcd-cert', pki.clientCert, '--etcd-key', pki.clientKey],
  });
  await waitFor('status.json lists the mount', async () => {
    const s = await (await fetch(`http://127.0.0.1:${redirectord!.httpPort}/status.json`)).text();
    return s.includes('/tls.mp3');
  });
});
