import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, chownSync, chmodSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { icecastUser, minimalIcecastConfig } from './icecast.js';
import {
  addHost,
  createBridge,
  deleteNamespace,
  listNamespaces,
  namespacePids,
  netnsRun,
  processAlive,
  procStat,
  setBridgePort,
  setDropAll,
  signalPid,
  spawnInNamespace,
  stopProcess,
  tailFile,
  type NsProcessRecord,
  type RunOptions,
  type RunResult,
} from './netns.js';
import { MASTER_ELECTION_PREFIX } from '../../src/coordination/keys.js';
import { startPortForward } from './port-forward.js';
import { waitFor } from './wait.js';

/**
 * A cluster of autoradio nodes in network namespaces on this machine. Each node runs, in this
 * order, an etcd member (one cluster across the nodes), Icecast (as icecast2, port 8000),
 * radiod and redirectord (ports 80 and 53). A client namespace on the same bridge holds
 * sources and listeners, so they survive the death of any node.
 *
 * All state (pids with their start times, addresses, dirs) is kept in
 * `<stateRoot>/<runId>/state.json`, so another process (the CLI's `down`, `--cleanup-stale`)
 * can find and stop exactly this run's processes: everything this run starts lives in one of
 * its own namespaces, and cleanup kills what `ip netns pids` reports for those, nothing else.
 */

export const PROCS = ['etcd', 'icecast', 'radiod', 'redirectord'] as const;
export type ProcName = (typeof PROCS)[number];
export type DaemonName = 'radiod' | 'redirectord';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const NS_PREFIX = 'arc';
export const DEFAULT_STATE_ROOT = join(tmpdir(), 'autoradio-cluster');
export const ICECAST_PORT = 8000;
export const HTTP_PORT = 80;
export const DNS_PORT = 53;
export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;
/** Host part of the client namespace's address (nodes use 1..N). */
export const CLIENT_INDEX = 200;

export interface ClusterOptions {
  nodes?: number;
  /** Start radiod and redirectord (false: etcd and Icecast only). Default true. */
  daemons?: boolean;
  domain?: string;
  leaseTtl?: number;
  logLevel?: string;
  stateRoot?: string;
  /** The run outlives its creator (CLI `up`, demo); `--cleanup-stale` leaves it alone. */
  detached?: boolean;
  /** Extra flags per daemon, appended to the command lines of daemonArgv(). */
  extraDaemonArgs?: Partial<Record<DaemonName, string[]>>;
  /** The etcd URL every node's daemons use instead of their own member's (e.g. a proxy inside each namespace). */
  daemonEtcdUrl?: string;
}

export interface ClusterNode {
  index: number;
  name: string;
  ns: string;
  ip: string;
  dir: string;
  icecastDir: string;
  /** The file radiod owns and renders; the harness only writes the initial minimal config. */
  icecastConfig: string;
  etcdUrl: string;
  peerUrl: string;
}

interface ClusterStateFile {
  version: 1;
  runId: string;
  ownerPid: number;
  ownerStartTime: string;
  detached: boolean;
  subnet: string;
  domain: string;
  leaseTtl: number;
  logLevel: string;
  daemons: boolean;
  extraDaemonArgs: Partial<Record<DaemonName, string[]>>;
  daemonEtcdUrl?: string;
  bridgeNs: string;
  clientNs: string;
  clientIp: string;
  icecastAdminPassword: string;
  icecastSourcePassword: string;
  nodes: ClusterNode[];
  procs: Record<string, Partial<Record<ProcName, NsProcessRecord>>>;
  extras: Record<string, NsProcessRecord & { ns: string }>;
  createdAt: string;
}

/** Timings measured while the cluster came up (ms). */
export interface StartTimings {
  namespacesMs: number;
  etcdHealthyMs: number;
  icecastAnswersMs: Record<string, number>;
  totalMs: number;
}

export function builtMain(program: 'radiod' | 'redirectord' | 'radioctl'): string {
  return join(PROJECT_ROOT, 'dist', program, 'main.js');
}

/** Which compiled programs exist (cluster tests skip what is missing). */
export function builtPrograms(): Record<'radiod' | 'redirectord' | 'radioctl', boolean> {
  return {
    radiod: existsSync(builtMain('radiod')),
    redirectord: existsSync(builtMain('redirectord')),
    radioctl: existsSync(builtMain('radioctl')),
  };
}

/**
 * The daemons' command lines, in one place. Flags follow SPEC.md; adjust here when a main
 * changes its flags.
 */
export function daemonArgv(
  kind: DaemonName,
  c: { domain: string; leaseTtl: number; logLevel: string; nodes: readonly ClusterNode[]; daemonEtcdUrl?: string },
  node: ClusterNode,
  extra: string[] = [],
): string[] {
  const common = [
    '--domain', c.domain,
    '--name', node.name,
    '--ip', node.ip,
    '--etcd-urls', c.daemonEtcdUrl ?? node.etcdUrl,
    '--log-level', c.logLevel,
  ];
  if (kind === 'radiod') {
    return [
      process.execPath, builtMain('radiod'), ...common,
      '--icecast-config', node.icecastConfig,
      '--icecast-port', String(ICECAST_PORT),
      // All Icecasts of the machine share one pid namespace: pidof would find every node's.
      '--icecast-pidfile', join(node.icecastDir, 'icecast.pid'),
      '--icecast-logdir', join(node.icecastDir, 'log'),
      '--lease-ttl', String(c.leaseTtl),
      // As /run/autoradio-radiod under systemd: a restarted radiod revokes its predecessor's lease.
      '--lease-file', join(node.dir, 'election-lease'),
      ...extra,
    ];
  }
  return [
    process.execPath, builtMain('redirectord'), ...common,
    '--http-port', String(HTTP_PORT),
    '--dns-port', String(DNS_PORT),
    '--nameservers', c.nodes.slice(0, 3).map((n) => `${n.name}.${c.domain}`).join(','),
    ...extra,
  ];
}

/** radioctl's command line (runs in the client namespace against the given etcd URLs). */
export function radioctlArgv(args: string[], etcdUrls: string[]): string[] {
  return [process.execPath, builtMain('radioctl'), ...args, '--etcd-urls', etcdUrls.join(',')];
}

/** A test source: a sine tone, MP3 128k in real time, PUT to `url` with the mount's credentials. */
export function sineSourceArgv(url: string, user: string, password: string, freq = 440): string[] {
  // Built by hand: WHATWG URL refuses to switch a special scheme (http:) to icecast:.
  const u = new URL(url);
  const target = `icecast://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${u.host}${u.pathname}`;
  return [
    'ffmpeg', '-hide_banner', '-loglevel', 'warning', '-nostdin', '-re',
    '-f', 'lavfi', '-i', `sine=frequency=${freq}:sample_rate=44100`,
    '-c:a', 'libmp3lame', '-b:a', '128k', '-content_type', 'audio/mpeg', '-f', 'mp3', target,
  ];
}

function cleanEnv(): NodeJS.ProcessEnv {
  // etcd reads every ETCD_* variable as a flag; etcdctl aborts on ETCDCTL_ENDPOINTS + --endpoints.
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_') && !k.startsWith('ETCDCTL_')));
}

let runCounter = 0;
const RUN_ID_RE = new RegExp(`^${NS_PREFIX}(\\d+)r(\\d+)$`);
const NS_RE = new RegExp(`^(${NS_PREFIX}\\d+r\\d+)-`);

function newRunId(stateRoot: string): string {
  for (;;) {
    runCounter += 1;
    const id = `${NS_PREFIX}${process.pid}r${runCounter}`;
    const taken = listNamespaces().some((ns) => ns.startsWith(`${id}-`)) || existsSync(join(stateRoot, id));
    if (!taken) return id;
  }
}

export class Cluster {
  readonly runDir: string;
  timings: StartTimings | undefined;

  private constructor(
    private state: ClusterStateFile,
    readonly stateRoot: string,
  ) {
    this.runDir = join(stateRoot, state.runId);
  }

  get runId(): string {
    return this.state.runId;
  }
  get domain(): string {
    return this.state.domain;
  }
  get nodes(): readonly ClusterNode[] {
    return this.state.nodes;
  }
  get clientNs(): string {
    return this.state.clientNs;
  }
  get clientIp(): string {
    return this.state.clientIp;
  }
  get bridgeNs(): string {
    return this.state.bridgeNs;
  }
  get daemons(): boolean {
    return this.state.daemons;
  }
  get leaseTtl(): number {
    return this.state.leaseTtl;
  }
  /** The process that started the run (the run is stale once it is gone). */
  get owner(): { pid: number; startTime: string } {
    return { pid: this.state.ownerPid, startTime: this.state.ownerStartTime };
  }
  get detached(): boolean {
    return this.state.detached;
  }
  /** The password of the initial (pre-radiod) Icecast config. */
  get icecastAdminPassword(): string {
    return this.state.icecastAdminPassword;
  }
  get icecastSourcePassword(): string {
    return this.state.icecastSourcePassword;
  }
  /** Every node's etcd client URL. */
  get etcdUrls(): string[] {
    return this.state.nodes.map((n) => n.etcdUrl);
  }

  /** Brings up namespaces, etcd, Icecast and (unless `daemons: false`) radiod and redirectord. */
  static async start(opts: ClusterOptions = {}): Promise<Cluster> {
    const t0 = Date.now();
    const stateRoot = opts.stateRoot ?? DEFAULT_STATE_ROOT;
    mkdirSync(stateRoot, { recursive: true });
    const runId = newRunId(stateRoot);
    const m = RUN_ID_RE.exec(runId)!;
    const subnet = `10.99.${((Number(m[1]) + Number(m[2])) % 250) + 1}`;
    const count = opts.nodes ?? 3;
    const nodes = Array.from({ length: count }, (_, i) => nodeInfo(runId, subnet, i + 1, join(stateRoot, runId)));
    const state: ClusterStateFile = {
      version: 1,
      runId,
      ownerPid: process.pid,
      ownerStartTime: procStat(process.pid)?.startTime ?? '',
      detached: opts.detached ?? false,
      subnet,
      domain: opts.domain ?? 'radio.test',
      leaseTtl: opts.leaseTtl ?? 5,
      logLevel: opts.logLevel ?? 'info',
      daemons: opts.daemons ?? true,
      extraDaemonArgs: opts.extraDaemonArgs ?? {},
      ...(opts.daemonEtcdUrl ? { daemonEtcdUrl: opts.daemonEtcdUrl } : {}),
      bridgeNs: `${runId}-br`,
      clientNs: `${runId}-cl`,
      clientIp: `${subnet}.${CLIENT_INDEX}`,
      icecastAdminPassword: randomBytes(9).toString('hex'),
      icecastSourcePassword: randomBytes(9).toString('hex'),
      nodes,
      procs: {},
      extras: {},
      createdAt: new Date().toISOString(),
    };
    const cluster = new Cluster(state, stateRoot);
    mkdirSync(cluster.runDir, { recursive: true });
    cluster.save();
    try {
      await createBridge(state.bridgeNs);
      await addHost(state.bridgeNs, state.clientNs, CLIENT_INDEX, `${state.clientIp}/24`);
      mkdirSync(join(cluster.runDir, 'client'), { recursive: true });
      for (const node of nodes) await cluster.prepareNode(node);
      const tNs = Date.now();
      const initialCluster = nodes.map((n) => `${n.name}=${n.peerUrl}`).join(',');
      for (const node of nodes) cluster.startEtcd(node, initialCluster, 'new');
      await cluster.waitEtcdHealthy(nodes, 30_000);
      const tEtcd = Date.now();
      const icecastAnswersMs: Record<string, number> = {};
      await Promise.all(
        nodes.map(async (node) => {
          const t = Date.now();
          await cluster.startIcecast(node);
          icecastAnswersMs[node.name] = Date.now() - t;
        }),
      );
      if (state.daemons) for (const node of nodes) await cluster.startDaemons(node);
      cluster.timings = {
        namespacesMs: tNs - t0,
        etcdHealthyMs: tEtcd - tNs,
        icecastAnswersMs,
        totalMs: Date.now() - t0,
      };
      return cluster;
    } catch (err) {
      const logs = cluster.describeLogs();
      await cluster.stop();
      throw new Error(`cluster start failed: ${(err as Error).message}\n${logs}`);
    }
  }

  /** Opens the state of a run started by another process (CLI `down`/`status`). */
  static attach(runId: string, stateRoot = DEFAULT_STATE_ROOT): Cluster {
    const file = join(stateRoot, runId, 'state.json');
    const state = JSON.parse(readFileSync(file, 'utf8')) as ClusterStateFile;
    return new Cluster(state, stateRoot);
  }

  // ---- node lookup and exec ----

  node(ref: number | string | ClusterNode): ClusterNode {
    if (typeof ref === 'object') return ref;
    const found =
      typeof ref === 'number'
        ? this.state.nodes.find((n) => n.index === ref)
        : this.state.nodes.find((n) => n.name === ref || n.ns === ref);
    if (!found) throw new Error(`no node ${String(ref)} in cluster ${this.runId}`);
    return found;
  }

  /** A node reference or 'client' -> namespace name. */
  nsOf(target: number | string | ClusterNode): string {
    return target === 'client' ? this.state.clientNs : this.node(target).ns;
  }

  /** Runs a command in a node's (or the client's) namespace; resolves to its stdout, throws on failure. */
  async exec(target: number | string | ClusterNode, argv: string[], opts: RunOptions = {}): Promise<string> {
    const r = await this.execResult(target, argv, opts);
    if (r.code !== 0) {
      throw new Error(`[${this.nsOf(target)}] ${argv.join(' ')} failed (exit ${r.code ?? 'signal/timeout'}): ${(r.stderr || r.stdout).trim()}`);
    }
    return r.stdout;
  }

  execResult(target: number | string | ClusterNode, argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    return netnsRun(this.nsOf(target), argv, { env: cleanEnv(), ...opts });
  }

  /** etcdctl with explicit endpoints (default: every node's member), run from the client namespace. */
  etcdctl(
    args: string[],
    o: { endpoints?: string[]; via?: number | string | ClusterNode; timeoutMs?: number; input?: string; commandTimeout?: string } = {},
  ): Promise<RunResult> {
    const endpoints = o.endpoints ?? this.etcdUrls;
    return this.execResult(
      o.via ?? 'client',
      ['etcdctl', '--endpoints', endpoints.join(','), '--dial-timeout=1s', `--command-timeout=${o.commandTimeout ?? '3s'}`, ...args],
      { timeoutMs: o.timeoutMs ?? 10_000, input: o.input },
    );
  }

  /**
   * The node whose etcd member is the raft leader, if the members agree on one. etcd extends
   * every lease when its raft leader changes, so killing that node delays lease expiry by an
   * election: tests that measure a lease TTL pick another node.
   */
  async etcdRaftLeader(): Promise<ClusterNode | undefined> {
    const r = await this.etcdctl(['endpoint', 'status', '-w', 'json'], { timeoutMs: 5000 });
    if (r.code !== 0) return undefined;
    // member_id and leader are uint64: compare their digits, never JSON numbers.
    for (const m of r.stdout.matchAll(/"Endpoint":"([^"]+)".*?"member_id":(\d+).*?"leader":(\d+)/g)) {
      if (m[2] === m[3]) return this.state.nodes.find((n) => n.etcdUrl === m[1]);
    }
    return undefined;
  }

  /**
   * Moves etcd's raft leadership to `to`'s member and waits until the members agree on it. Tests
   * that measure a lease TTL across a node's death use it so that the dead node is surely not the
   * raft leader: radiod moves leadership off the master's node on its own, possibly onto the
   * node a test is about to kill.
   */
  async moveEtcdRaftLeader(to: ClusterNode): Promise<void> {
    await waitFor(`raft leadership on ${to.name}`, async () => {
      const r = await this.etcdctl(['endpoint', 'status', '-w', 'json'], { timeoutMs: 5000 });
      if (r.code !== 0) return false;
      let leaderUrl: string | undefined;
      let targetId: string | undefined;
      // member_id and leader are uint64: compare their digits, never JSON numbers.
      for (const m of r.stdout.matchAll(/"Endpoint":"([^"]+)".*?"member_id":(\d+).*?"leader":(\d+)/g)) {
        if (m[2] === m[3]) leaderUrl = m[1];
        if (m[1] === to.etcdUrl) targetId = m[2];
      }
      if (leaderUrl === to.etcdUrl) return true;
      if (leaderUrl === undefined || targetId === undefined) return false;
      await this.etcdctl(['move-leader', BigInt(targetId).toString(16)], { endpoints: [leaderUrl], timeoutMs: 10_000 });
      return false;
    }, { timeoutMs: 30_000, intervalMs: 200 });
  }

  /** True when every given member answers `endpoint health`. */
  async etcdHealthy(nodes: readonly ClusterNode[] = this.state.nodes): Promise<boolean> {
    const r = await this.etcdctl(['endpoint', 'health'], { endpoints: nodes.map((n) => n.etcdUrl), timeoutMs: 5000 });
    return r.code === 0;
  }

  async waitEtcdHealthy(nodes: readonly ClusterNode[] = this.state.nodes, timeoutMs = 20_000): Promise<number> {
    const t = Date.now();
    await waitFor(`etcd healthy on ${nodes.map((n) => n.name).join(',')}`, () => this.etcdHealthy(nodes), {
      timeoutMs,
      intervalMs: 100,
    });
    return Date.now() - t;
  }

  /** A write through the given members succeeds (quorum present). */
  async etcdWritable(nodes: readonly ClusterNode[] = this.state.nodes): Promise<boolean> {
    // A short command timeout: a put stuck in an election would otherwise hide the recovery time.
    const r = await this.etcdctl(['put', '/autoradio-harness/probe', String(Date.now())], {
      endpoints: nodes.map((n) => n.etcdUrl),
      timeoutMs: 5000,
      commandTimeout: '500ms',
    });
    return r.code === 0;
  }

  /** Icecast's status page on a node, parsed; undefined when it does not answer. */
  async icecastStatus(target: number | string | ClusterNode): Promise<IcecastStats | undefined> {
    const node = this.node(target);
    const r = await this.execResult(node, ['curl', '-s', '--max-time', '2', `http://${node.ip}:${ICECAST_PORT}/status-json.xsl`], {
      timeoutMs: 4000,
    });
    if (r.code !== 0) return undefined;
    try {
      const body = JSON.parse(r.stdout) as { icestats?: IcecastStats };
      return typeof body.icestats?.server_id === 'string' ? body.icestats : undefined;
    } catch {
      return undefined;
    }
  }

  /** Mount paths Icecast currently serves on a node (sources and connected relays). */
  async icecastMounts(target: number | string | ClusterNode): Promise<string[]> {
    const stats = await this.icecastStatus(target);
    if (!stats?.source) return [];
    const list = Array.isArray(stats.source) ? stats.source : [stats.source];
    // A relayed mount is served from its hidden relay mount, which the mount itself falls back to.
    return list.map((s) => new URL(s.listenurl).pathname.replace(/^\/_relay\//, '/'));
  }

  // ---- process control ----

  proc(target: number | string | ClusterNode, name: ProcName): NsProcessRecord | undefined {
    return this.state.procs[this.node(target).name]?.[name];
  }

  isRunning(target: number | string | ClusterNode, name: ProcName): boolean {
    const p = this.proc(target, name);
    return p !== undefined && processAlive(p.pid, p.startTime);
  }

  /** kill -9 (or another signal) one of a node's processes and wait until it is gone. */
  async kill(target: number | string | ClusterNode, name: ProcName, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc(target, name);
    if (p) await stopProcess(p, signal, 4000);
  }

  /** (Re)starts one process of a node; etcd restarts on its data dir. */
  async start(target: number | string | ClusterNode, name: ProcName): Promise<void> {
    const node = this.node(target);
    if (this.isRunning(node, name)) return;
    if (name === 'etcd') this.startEtcd(node, '', 'existing');
    else if (name === 'icecast') await this.startIcecast(node, false);
    else this.startDaemon(node, name);
  }

  /** kill -9 every process of a node at once (a power cut); its namespace and data stay. */
  async killNode(target: number | string | ClusterNode): Promise<void> {
    const node = this.node(target);
    const pids = await namespacePids(node.ns);
    for (const pid of pids) signalPid(pid, 'SIGKILL');
    await Promise.all(PROCS.map((p) => this.kill(node, p, 'SIGKILL')));
    await waitFor(`processes of ${node.name} gone`, async () => (await namespacePids(node.ns)).filter((p) => processAlive(p)).length === 0, {
      timeoutMs: 5000,
    });
  }

  /** Starts whatever of a node's processes is not running, in order. */
  async startNode(target: number | string | ClusterNode): Promise<void> {
    const node = this.node(target);
    await this.start(node, 'etcd');
    await this.start(node, 'icecast');
    if (this.state.daemons) for (const d of ['radiod', 'redirectord'] as const) await this.start(node, d);
  }

  /** Cuts the node off the bridge (instant full partition). */
  isolate(target: number | string | ClusterNode): Promise<void> {
    return setBridgePort(this.state.bridgeNs, this.node(target).index, false);
  }

  heal(target: number | string | ClusterNode): Promise<void> {
    return setBridgePort(this.state.bridgeNs, this.node(target).index, true);
  }

  /** The iptables variant: the node silently drops everything on eth0 (no RST, no link change). */
  dropTraffic(target: number | string | ClusterNode, drop = true): Promise<void> {
    return setDropAll(this.node(target).ns, drop);
  }

  /**
   * Scale-out as documented for operators: `etcdctl member add` on the running cluster, then
   * the new member starts with `--initial-cluster-state existing` and the cluster string that
   * member add printed; then Icecast and the daemons.
   */
  async addNode(): Promise<ClusterNode> {
    const index = Math.max(...this.state.nodes.map((n) => n.index)) + 1;
    const node = nodeInfo(this.runId, this.state.subnet, index, this.runDir);
    const live = this.state.nodes.filter((n) => this.isRunning(n, 'etcd'));
    // etcd refuses member add ("unhealthy cluster") until every member has been connected for
    // about 5 s, e.g. shortly after a partition healed: retry like an operator would.
    let r: RunResult | undefined;
    await waitFor(`etcdctl member add ${node.name}`, async () => {
      r = await this.etcdctl(['member', 'add', node.name, `--peer-urls=${node.peerUrl}`], { endpoints: live.map((n) => n.etcdUrl) });
      if (r.code === 0) return true;
      if (!/unhealthy cluster/.test(r.stderr)) throw new Error(r.stderr.trim());
      return false;
    }, { timeoutMs: 15_000, intervalMs: 500 }).catch((err: Error) => {
      throw new Error(`etcdctl member add ${node.name} failed: ${err.message} ${r?.stderr.trim() ?? ''}`);
    });
    if (!r || r.code !== 0) throw new Error(`etcdctl member add ${node.name} failed`);
    const initial = /ETCD_INITIAL_CLUSTER="([^"]+)"/.exec(r.stdout)?.[1];
    if (!initial) throw new Error(`cannot parse member add output: ${r.stdout}`);
    this.state.nodes.push(node);
    this.save();
    await this.prepareNode(node);
    this.startEtcd(node, initial, 'existing');
    await this.waitEtcdHealthy([node], 20_000);
    await this.startIcecast(node);
    if (this.state.daemons) await this.startDaemons(node);
    return node;
  }

  /**
   * Starts an extra process (source, listener, forwarder) in a namespace; it is stopped with
   * the cluster. Output goes to `<runDir>/<ns owner>/<label>.log`.
   */
  spawn(target: number | string | ClusterNode, label: string, argv: string[]): NsProcessRecord {
    const ns = this.nsOf(target);
    const dir = target === 'client' ? join(this.runDir, 'client') : this.node(target).dir;
    const rec = spawnInNamespace(ns, argv, join(dir, `${label}.log`), { env: cleanEnv() });
    this.state.extras[label] = { ...rec, ns };
    this.save();
    return rec;
  }

  extra(label: string): NsProcessRecord | undefined {
    return this.state.extras[label];
  }

  async stopExtra(label: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const rec = this.state.extras[label];
    if (rec) await stopProcess(rec, signal, 3000);
    delete this.state.extras[label];
    this.save();
  }

  /**
   * Forwards 127.0.0.1:`port` in the root namespace to `target`'s port 80, rewriting cluster
   * hosts in redirects and playlists to the other forwarded ports (`hostPorts`).
   */
  async forward(target: number | string | ClusterNode, port: number, hostPorts: Record<string, string>): Promise<NsProcessRecord> {
    const node = this.node(target);
    const label = `forward-${port}`;
    const rec = await startPortForward(
      node.ns,
      { host: '127.0.0.1', port },
      { targetHost: node.ip, targetPort: HTTP_PORT, rewrites: hostPorts },
      join(node.dir, `${label}.log`),
    );
    this.state.extras[label] = { ...rec, ns: node.ns };
    this.save();
    return rec;
  }

  /** Creates a mount: with radioctl when built, else by writing the mount JSON through etcdctl. */
  async createMount(path: string): Promise<{ path: string; username: string; password: string; via: 'radioctl' | 'etcdctl' }> {
    if (builtPrograms().radioctl) {
      const r = await this.radioctl(['create-mount', path, '--json']);
      if (r.code !== 0) throw new Error(`radioctl create-mount ${path} failed: ${(r.stderr || r.stdout).trim()}`);
      const creds = parseCredentials(r.stdout);
      return { path, ...creds, via: 'radioctl' };
    }
    const mount = { path, username: 'source', password: randomBytes(12).toString('hex') };
    const r = await this.etcdctl(['put', `/autoradio/v1/mounts/${path.replace(/^\//, '')}`, JSON.stringify(mount)]);
    if (r.code !== 0) throw new Error(`etcdctl put mount ${path} failed: ${r.stderr.trim()}`);
    return { ...mount, via: 'etcdctl' };
  }

  /**
   * The elected master as the election keys say (lowest create revision first), read with a
   * serializable get from one member so it also answers on a member without quorum.
   */
  async master(o: { via?: number | string | ClusterNode; endpoints?: string[] } = {}): Promise<{ name: string; addresses: string[] } | undefined> {
    const args = ['get', '--prefix', MASTER_ELECTION_PREFIX, '-w', 'json'];
    if (o.endpoints && o.endpoints.length === 1) args.push('--consistency=s');
    const r = await this.etcdctl(args, { endpoints: o.endpoints, via: o.via, timeoutMs: 5000 });
    if (r.code !== 0) throw new Error(`reading the master election failed: ${r.stderr.trim()}`);
    const body = JSON.parse(r.stdout) as { kvs?: { value: string; create_revision: number }[] };
    const first = (body.kvs ?? []).sort((a, b) => a.create_revision - b.create_revision)[0];
    if (!first) return undefined;
    return JSON.parse(Buffer.from(first.value, 'base64').toString('utf8')) as { name: string; addresses: string[] };
  }

  /** HTTP status of a GET on a node's front door (port 80), from the client namespace; 0 when no answer. */
  async httpStatus(target: number | string | ClusterNode, path: string, via: number | string | ClusterNode = 'client'): Promise<number> {
    const node = this.node(target);
    const r = await this.execResult(via, ['curl', '-s', '-o', '/dev/null', '--max-time', '2', '-w', '%{http_code}', `http://${node.ip}${path}`], {
      timeoutMs: 4000,
    });
    return Number(r.stdout.trim()) || 0;
  }

  /** Waits until every running node's redirectord answers and a master is elected. */
  async waitDaemonsReady(timeoutMs = 30_000): Promise<void> {
    for (const node of this.state.nodes) {
      if (!this.isRunning(node, 'redirectord')) continue;
      await waitFor(`redirectord answering on ${node.name}`, async () => {
        for (const d of ['radiod', 'redirectord'] as const) {
          if (!this.isRunning(node, d)) throw new Error(`${d} on ${node.name} exited: ${tailFile(join(node.dir, `${d}.log`), 5)}`);
        }
        return (await this.httpStatus(node, '/status.json')) === 200;
      }, { timeoutMs, intervalMs: 200 });
    }
    await waitFor('a master elected', () => this.master(), { timeoutMs, intervalMs: 200 });
  }

  radioctl(args: string[], o: { etcdUrls?: string[]; timeoutMs?: number } = {}): Promise<RunResult> {
    return this.execResult('client', radioctlArgv(args, o.etcdUrls ?? this.etcdUrls), { timeoutMs: o.timeoutMs ?? 20_000 });
  }

  /** The last lines of every log of this run (for failure messages). */
  describeLogs(lines = 15): string {
    const parts: string[] = [];
    const dirs = [...this.state.nodes.map((n) => n.dir), join(this.runDir, 'client')];
    for (const dir of dirs) {
      let files: string[] = [];
      try {
        files = readdirSync(dir).filter((f) => f.endsWith('.log'));
      } catch {
        continue;
      }
      for (const f of files) {
        const tail = tailFile(join(dir, f), lines).trim();
        if (tail) parts.push(`--- ${join(dir, f)}\n${tail}`);
      }
    }
    return parts.join('\n');
  }

  /** One line per node and process: running or not. */
  status(): string {
    const lines = [`run ${this.runId} (subnet ${this.state.subnet}.0/24, domain ${this.domain}, dir ${this.runDir})`];
    for (const n of this.state.nodes) {
      const procs = PROCS.map((p) => {
        const rec = this.proc(n, p);
        if (!rec) return `${p}=-`;
        return `${p}=${processAlive(rec.pid, rec.startTime) ? rec.pid : 'dead'}`;
      });
      lines.push(`${n.name} ${n.ip} ns=${n.ns} ${procs.join(' ')}`);
    }
    for (const [label, rec] of Object.entries(this.state.extras)) {
      lines.push(`extra ${label} ns=${rec.ns} ${processAlive(rec.pid, rec.startTime) ? rec.pid : 'dead'}`);
    }
    return lines.join('\n');
  }

  /**
   * Stops everything of this run: kills every process in its namespaces (and its recorded
   * pids), deletes the namespaces and the run dir (kept with `keepDir` or
   * AUTORADIO_CLUSTER_KEEP=1 for post-mortems).
   */
  async stop(opts: { keepDir?: boolean } = {}): Promise<void> {
    const records = [
      ...Object.values(this.state.procs).flatMap((p) => Object.values(p)),
      ...Object.values(this.state.extras),
    ];
    for (const rec of records) if (processAlive(rec.pid, rec.startTime)) signalPid(rec.pid, 'SIGKILL');
    await removeRunNamespaces(this.runId);
    const keep = opts.keepDir ?? process.env['AUTORADIO_CLUSTER_KEEP'] === '1';
    if (!keep) rmSync(this.runDir, { recursive: true, force: true });
  }

  // ---- internals ----

  private save(): void {
    const file = join(this.runDir, 'state.json');
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.state, null, 2));
    renameSync(tmp, file);
  }

  private record(node: ClusterNode, name: ProcName, rec: NsProcessRecord): void {
    (this.state.procs[node.name] ??= {})[name] = rec;
    this.save();
  }

  private async prepareNode(node: ClusterNode): Promise<void> {
    await addHost(this.state.bridgeNs, node.ns, node.index, `${node.ip}/24`);
    mkdirSync(join(node.dir, 'etcd'), { recursive: true, mode: 0o700 });
    // Icecast (as icecast2) writes its logs and pid file here and re-reads the config on HUP.
    const { uid, gid } = icecastUser();
    mkdirSync(join(node.icecastDir, 'log'), { recursive: true });
    chmodSync(node.dir, 0o755);
    chmodSync(node.icecastDir, 0o755);
    chownSync(node.icecastDir, uid, gid);
    chownSync(join(node.icecastDir, 'log'), uid, gid);
    // The minimal valid config Icecast needs to start; radiod replaces it with the real one.
    // Bound to every address of the namespace (like radiod's default), so both the node
    // address and 127.0.0.1 (where redirectord looks for it) answer from the start.
    const config = minimalIcecastConfig({
      host: node.ip,
      port: ICECAST_PORT,
      dir: node.icecastDir,
      sourcePassword: this.state.icecastSourcePassword,
      adminPassword: this.state.icecastAdminPassword,
    }).replace(`<bind-address>${node.ip}</bind-address>`, '<bind-address>0.0.0.0</bind-address>');
    writeFileSync(node.icecastConfig, config, { mode: 0o644 });
  }

  private startEtcd(node: ClusterNode, initialCluster: string, clusterState: 'new' | 'existing'): void {
    const argv = [
      'etcd',
      '--name', node.name,
      '--data-dir', join(node.dir, 'etcd'),
      '--listen-client-urls', `${node.etcdUrl},http://127.0.0.1:${ETCD_CLIENT_PORT}`,
      '--advertise-client-urls', node.etcdUrl,
      '--listen-peer-urls', node.peerUrl,
      '--initial-advertise-peer-urls', node.peerUrl,
      '--initial-cluster-token', this.runId,
      '--heartbeat-interval', '100',
      '--election-timeout', '1000',
      '--pre-vote=true',
      // As the README recommends: every status report is a revision, old ones must go.
      '--auto-compaction-mode', 'periodic',
      '--auto-compaction-retention', '1h',
      '--logger', 'zap',
      '--log-level', 'warn',
    ];
    // On restart the member reads its membership from its data dir.
    if (initialCluster) argv.push('--initial-cluster', initialCluster, '--initial-cluster-state', clusterState);
    this.record(node, 'etcd', spawnInNamespace(node.ns, argv, join(node.dir, 'etcd.log'), { env: cleanEnv() }));
  }

  private async startIcecast(node: ClusterNode, wait = true): Promise<void> {
    const argv = ['setpriv', '--reuid=icecast2', '--regid=icecast', '--init-groups', 'icecast2', '-c', node.icecastConfig];
    this.record(node, 'icecast', spawnInNamespace(node.ns, argv, join(node.dir, 'icecast.log'), { env: cleanEnv() }));
    // Also needed before radiod starts: a HUP before Icecast installed its handler kills it.
    if (wait) await this.waitIcecast(node);
  }

  async waitIcecast(target: number | string | ClusterNode, timeoutMs = 10_000): Promise<number> {
    const node = this.node(target);
    const t = Date.now();
    await waitFor(`Icecast answering on ${node.name}`, async () => {
      if (!this.isRunning(node, 'icecast')) throw new Error(`Icecast on ${node.name} exited: ${tailFile(join(node.dir, 'icecast.log'), 5)}`);
      return (await this.icecastStatus(node)) !== undefined;
    }, { timeoutMs, intervalMs: 50 });
    return Date.now() - t;
  }

  private async startDaemons(node: ClusterNode): Promise<void> {
    this.startDaemon(node, 'radiod');
    this.startDaemon(node, 'redirectord');
  }

  private startDaemon(node: ClusterNode, kind: DaemonName): void {
    const argv = daemonArgv(kind, this.state, node, this.state.extraDaemonArgs[kind]);
    this.record(node, kind, spawnInNamespace(node.ns, argv, join(node.dir, `${kind}.log`), { env: cleanEnv() }));
  }
}

export interface IcecastStats {
  server_id: string;
  source?: IcecastSourceStats | IcecastSourceStats[];
}

export interface IcecastSourceStats {
  listenurl: string;
  listeners?: number;
  stream_start_iso8601?: string;
}

function nodeInfo(runId: string, subnet: string, index: number, runDir: string): ClusterNode {
  const ip = `${subnet}.${index}`;
  const dir = join(runDir, `node${index}`);
  const icecastDir = join(dir, 'icecast');
  return {
    index,
    name: `node${index}`,
    ns: `${runId}-n${index}`,
    ip,
    dir,
    icecastDir,
    icecastConfig: join(icecastDir, 'icecast.xml'),
    etcdUrl: `http://${ip}:${ETCD_CLIENT_PORT}`,
    peerUrl: `http://${ip}:${ETCD_PEER_PORT}`,
  };
}

/** Reads username/password from radioctl output (JSON with --json, or "key: value" text). */
export function parseCredentials(out: string): { username: string; password: string } {
  try {
    const v = JSON.parse(out) as Record<string, unknown>;
    const src = (typeof v['mount'] === 'object' && v['mount'] ? v['mount'] : v) as Record<string, unknown>;
    if (typeof src['username'] === 'string' && typeof src['password'] === 'string') {
      return { username: src['username'], password: src['password'] };
    }
  } catch {
    // not JSON: fall through to text
  }
  const user = /user(?:name)?\s*[:=]\s*(\S+)/i.exec(out)?.[1];
  const pass = /password\s*[:=]\s*(\S+)/i.exec(out)?.[1];
  if (!user || !pass) throw new Error(`cannot find credentials in radioctl output: ${out}`);
  return { username: user, password: pass };
}

/** Kills every process in the run's namespaces and deletes them (bridge last). */
export async function removeRunNamespaces(runId: string): Promise<string[]> {
  const mine = listNamespaces().filter((ns) => ns.startsWith(`${runId}-`));
  mine.sort((a, b) => Number(a.endsWith('-br')) - Number(b.endsWith('-br')));
  for (const ns of mine) await deleteNamespace(ns);
  return mine;
}

/** Runs (by id) that have namespaces or a state dir. */
export function knownRuns(stateRoot = DEFAULT_STATE_ROOT): string[] {
  const ids = new Set<string>();
  for (const ns of listNamespaces()) {
    const m = NS_RE.exec(ns);
    if (m) ids.add(m[1]!);
  }
  try {
    for (const d of readdirSync(stateRoot)) if (RUN_ID_RE.test(d)) ids.add(d);
  } catch {
    // no state root yet
  }
  return [...ids].sort();
}

/**
 * Removes leftovers of runs whose owning process is gone: namespaces (with every process in
 * them) and state dirs. Detached runs (CLI `up`, demo) are kept unless `includeDetached`.
 * A run of a live process is never touched.
 */
export async function cleanupStale(o: { stateRoot?: string; includeDetached?: boolean } = {}): Promise<string[]> {
  const stateRoot = o.stateRoot ?? DEFAULT_STATE_ROOT;
  const removed: string[] = [];
  for (const runId of knownRuns(stateRoot)) {
    const pid = Number(RUN_ID_RE.exec(runId)![1]);
    let ownerStart: string | undefined;
    let detached = false;
    try {
      const st = JSON.parse(readFileSync(join(stateRoot, runId, 'state.json'), 'utf8')) as ClusterStateFile;
      ownerStart = st.ownerStartTime || undefined;
      detached = st.detached;
    } catch {
      // no state file: judge by the pid in the name alone
    }
    if (detached && !o.includeDetached) continue;
    if (!detached && processAlive(pid, ownerStart)) continue;
    await removeRunNamespaces(runId);
    rmSync(join(stateRoot, runId), { recursive: true, force: true });
    removed.push(runId);
  }
  return removed;
}
