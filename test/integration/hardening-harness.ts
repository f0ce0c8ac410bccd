import assert from 'node:assert/strict';
import { spawn, type SpawnOptions } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { icecastSources as sourcesAt, startIcecast, type IcecastSourceStats, type TestIcecast } from '../support/icecast.js';
import { freePort } from '../support/ports.js';
import { startProcess, type Managed, collectLines } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { MASTER_ELECTION_PREFIX, nodeKey } from '../../src/coordination/keys.js';
import type { NodeStatus } from '../../src/coordination/node-status.js';

/**
 * Shared by the hardening tests (abuse-*, security, metrics): the real redirectord and radioctl
 * processes from dist/, a private etcd and Icecast, and a hand-written master/node entry in etcd
 * standing in for radiod (which these tests do not need).
 */

export const ROOT = new URL('../..', import.meta.url).pathname;
export const REDIRECTORD = join(ROOT, 'dist/redirectord/main.js');
/** The packaged entry point, as /usr/bin/radioctl runs it (it calls dist/radioctl/main.js). */
export const RADIOCTL = join(ROOT, 'bin/radioctl');
export const RADIOD = join(ROOT, 'dist/radiod/main.js');
export const DOMAIN = 'radio.test';

export function assertBuilt(): void {
  for (const f of [REDIRECTORD, RADIOCTL]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: build with npx tsc -p tsconfig.json first`);
  }
}

export interface Daemon {
  proc: Managed;
  pid: number;
  /** Every stdout line (pino JSON), unbounded: the tests read logs for secrets and warnings. */
  lines: string[];
  stderr: string[];
  httpPort: number;
  dnsPort: number;
  metricsPort: number;
  stop(): Promise<void>;
}

export interface RedirectordOptions {
  etcdUrls: string;
  icecastPort: number;
  name?: string;
  extraArgs?: string[];
  logLevel?: string;
  /** Skip waiting for status.json (e.g. etcd unreachable on purpose). */
  noWait?: boolean;
}

export async function startRedirectord(o: RedirectordOptions): Promise<Daemon> {
  const httpPort = await freePort();
  const dnsPort = await freePort();
  const metricsPort = await freePort();
  const args = [
    REDIRECTORD,
    '--domain', DOMAIN,
    '--name', o.name ?? 'n1',
    '--ip', '127.0.0.1',
    '--etcd-urls', o.etcdUrls,
    '--http-port', String(httpPort),
    '--http-bind', '127.0.0.1',
    '--dns-port', String(dnsPort),
    '--dns-bind', '127.0.0.1',
    '--icecast-port', String(o.icecastPort),
    '--metrics-listen', `127.0.0.1:${metricsPort}`,
    '--log-level', o.logLevel ?? 'info',
    ...(o.extraArgs ?? []),
  ];
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AUTORADIO_')));
  const proc = startProcess(process.execPath, args, { cwd: ROOT, env });
  const lines: string[] = [];
  const stderr: string[] = [];
  collectLines(proc.child.stdout, lines);
  collectLines(proc.child.stderr, stderr);
  const d: Daemon = {
    proc,
    pid: proc.child.pid!,
    lines,
    stderr,
    httpPort,
    dnsPort,
    metricsPort,
    stop: () => proc.stop('SIGTERM', 5000),
  };
  try {
    await waitFor('redirectord started', () => {
      if (proc.child.exitCode !== null) throw new Error(`redirectord exited: ${stderr.join('\n')}`);
      return lines.some((l) => l.includes('"redirectord started"'));
    }, { timeoutMs: 20_000 });
    if (!o.noWait) {
      await waitFor('status.json answers', async () => (await fetch(`http://127.0.0.1:${httpPort}/status.json`)).ok, { timeoutMs: 10_000 });
    }
  } catch (err) {
    await d.stop();
    throw new Error(`${(err as Error).message}\n${lines.slice(-30).join('\n')}\n${stderr.join('\n')}`);
  }
  return d;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs radioctl through bin/ with `args` (etcd flags included by the caller). */
export function radioctl(args: string[], opts: SpawnOptions & { stdin?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RADIOCTL, ...args], { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin!.end(opts.stdin ?? '');
  });
}

export interface MountCredentials {
  path: string;
  username: string;
  password: string;
}

export async function createMount(etcdArgs: string[], path: string): Promise<MountCredentials> {
  const r = await radioctl([...etcdArgs, '--json', 'create-mount', path]);
  if (r.code !== 0) throw new Error(`radioctl create-mount ${path} failed: ${r.stderr}`);
  const m = JSON.parse(r.stdout) as MountCredentials;
  return { path: m.path, username: m.username, password: m.password };
}

/** Icecast <mount> blocks giving each mount its own source credentials, as radiod renders them. */
export function mountXml(mounts: MountCredentials[]): string {
  return mounts
    .map((m) => `<mount type="normal"><mount-name>${m.path}</mount-name><username>${m.username}</username><password>${m.password}</password></mount>`)
    .join('\n');
}

export function nodeStatus(name: string, icecastPort: number, mounts: Record<string, number> = {}): NodeStatus {
  const listeners = Object.values(mounts).reduce((a, b) => a + b, 0);
  return {
    name,
    // Dual stack, so IPv6 listeners have a node of their family (none would be a 503).
    addresses: ['127.0.0.1', '::1'],
    icecastPort,
    icecastOk: true,
    mounts,
    listeners,
    bandwidthKbps: 0,
    maxListeners: 100,
    maxBandwidthKbps: 0,
    reportedAt: Date.now(),
  };
}

/** Writes what radiod would: the node's status and (once) a master election key for it. */
export async function publishNode(client: Etcd3, status: NodeStatus, master = true): Promise<void> {
  await client.put(nodeKey(status.name)).value(JSON.stringify(status));
  if (master) {
    await client
      .put(`${MASTER_ELECTION_PREFIX}fake-${status.name}`)
      .value(JSON.stringify({ name: status.name, addresses: status.addresses, icecastPort: status.icecastPort }));
  }
}

export interface Stack {
  etcd: TestEtcd;
  client: Etcd3;
  icecast: TestIcecast;
  etcdArgs: string[];
  mounts: MountCredentials[];
  redirectord: Daemon;
  stop(): Promise<void>;
}

/**
 * etcd, mounts created with radioctl, an Icecast holding their credentials (global source
 * password unknown to everyone), node n1 as master, and redirectord in front of it.
 */
export async function startStack(o: { mountPaths: string[]; redirectord?: Partial<RedirectordOptions> }): Promise<Stack> {
  assertBuilt();
  const etcd = await startEtcd();
  const client = new Etcd3({ hosts: etcd.url });
  const etcdArgs = ['--etcd-urls', etcd.url];
  let icecast: TestIcecast | undefined;
  let redirectord: Daemon | undefined;
  const stop = async () => {
    await redirectord?.stop();
    await icecast?.stop();
    client.close();
    await etcd.stop();
  };
  try {
    const mounts: MountCredentials[] = [];
    for (const p of o.mountPaths) mounts.push(await createMount(etcdArgs, p));
    icecast = await startIcecast({
      sourcePassword: `unknown-${Math.random().toString(36).slice(2)}`,
      adminPassword: `admin-${Math.random().toString(36).slice(2)}`,
      extraXml: mountXml(mounts),
    });
    await publishNode(client, nodeStatus('n1', icecast.port));
    redirectord = await startRedirectord({ etcdUrls: etcd.url, icecastPort: icecast.port, ...o.redirectord });
    await waitFor('redirectord knows the master and mounts', async () => {
      const s = (await (await fetch(`http://127.0.0.1:${redirectord!.httpPort}/status.json`)).json()) as Record<string, unknown>;
      const text = JSON.stringify(s);
      return o.mountPaths.every((p) => text.includes(p)) && text.includes('n1');
    });
    return { etcd, client, icecast, etcdArgs, mounts, redirectord, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

// ---- process resources ----

export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

export function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

/** Fails with the daemon's stderr if it has exited. */
export function assertAlive(d: Daemon, name = 'redirectord'): void {
  assert.equal(d.proc.child.exitCode, null, `${name} died:\n${d.stderr.join('\n')}`);
}

export interface Baseline {
  fds: number;
  rssKb: number;
}

export function baseline(pid: number): Baseline {
  return { fds: fdCount(pid), rssKb: rssKb(pid) };
}

/** "Near baseline": at most 10 more descriptors and 64 MB more RSS, after a settle with waitFor. */
export async function waitNearBaseline(pid: number, base: Baseline, timeoutMs = 20_000): Promise<{ fds: number; rssKb: number }> {
  let last = { fds: 0, rssKb: 0 };
  try {
    return await waitFor(
      'fds and RSS back near baseline',
      () => {
        last = baseline(pid);
        return last.fds <= base.fds + 10 && last.rssKb <= base.rssKb + 64 * 1024 ? last : undefined;
      },
      { timeoutMs, intervalMs: 250 },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}: baseline ${JSON.stringify(base)}, now ${JSON.stringify(last)}`);
  }
}

// ---- raw sockets ----

export interface RawResult {
  data: Buffer;
  /** The server closed (or reset) the connection before the deadline. */
  closed: boolean;
  error?: string;
}

/**
 * Sends `chunks` (with an optional pause between them) and collects everything until the server
 * closes or `timeoutMs` passes.
 */
export function rawExchange(
  port: number,
  chunks: (Buffer | string)[],
  opts: { timeoutMs?: number; localAddress?: string; gapMs?: number; endAfterSend?: boolean } = {},
): Promise<RawResult> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port, localAddress: opts.localAddress });
    const got: Buffer[] = [];
    let error: string | undefined;
    let settled = false;
    const done = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ data: Buffer.concat(got), closed, error });
    };
    const timer = setTimeout(() => done(false), opts.timeoutMs ?? 5000);
    sock.on('data', (c: Buffer) => got.push(c));
    sock.on('error', (e) => (error = e.message));
    sock.on('close', () => done(true));
    sock.on('connect', async () => {
      for (const c of chunks) {
        if (sock.destroyed) return;
        sock.write(c);
        if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
      }
      if (opts.endAfterSend) sock.end();
    });
  });
}

/** Opens a socket and resolves once it is connected; the caller owns it. */
export function openSocket(port: number, localAddress?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

// ---- audio clients ----

export function ffmpegSource(url: string, opts: { realtime?: boolean; seconds?: number } = {}): Managed {
  return startProcess('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-nostdin',
    ...(opts.realtime === false ? [] : ['-re']),
    '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=44100${opts.seconds ? `:duration=${opts.seconds}` : ''}`,
    '-c:a', 'libmp3lame', '-b:a', '64k', '-content_type', 'audio/mpeg', '-f', 'mp3',
    url,
  ]);
}

export { listen } from '../support/listen.js';

/** Mount paths that have a live source on this Icecast, with their stats. */
export function icecastSources(icecast: TestIcecast): Promise<Map<string, IcecastSourceStats>> {
  return sourcesAt(icecast.url);
}

/** Parses a Prometheus text scrape into `series text -> value` (e.g. `x{a="b"}` -> 3). */
export async function scrape(port: number): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** A UDP statsd stand-in on loopback: every metric line the daemon sends, in order. */
export interface StatsdSink {
  port: number;
  lines: string[];
  close(): void;
}

export async function startStatsdSink(): Promise<StatsdSink> {
  const socket = createSocket('udp4');
  const lines: string[] = [];
  socket.on('message', (m) => lines.push(...m.toString().split('\n')));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  return { port: socket.address().port, lines, close: () => socket.close() };
}
