/**
 * The namespace cluster from the command line (the demo and manual experiments):
 *
 *   node --import tsx scripts/cluster.ts up [--nodes 3] [--no-daemons] [--label NAME] [--domain D]
 *        [--lease-ttl S] [--mount /stream.mp3] [--source] [--forward 8080]
 *   node --import tsx scripts/cluster.ts status [--label NAME | --run ID]
 *   node --import tsx scripts/cluster.ts down [--label NAME | --run ID]
 *   node --import tsx scripts/cluster.ts exec [--label NAME] NODE -- CMD...   (NODE: node1.., or client)
 *   node --import tsx scripts/cluster.ts cleanup-stale [--all]
 *
 * `up` starts a small keeper process that owns the cluster (it is the parent of every cluster
 * process, so they are reaped, and it is the run's owner, so `cleanup-stale` knows the run is
 * alive while the keeper is); `up` returns once the keeper reports the cluster ready. The run
 * id is recorded under the label (default "default"); `down` with the same label asks the
 * keeper to stop everything, or stops the run itself when the keeper is gone.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import {
  builtPrograms,
  cleanupStale,
  Cluster,
  DEFAULT_STATE_ROOT,
  knownRuns,
  removeRunNamespaces,
  sineSourceArgv,
} from '../test/support/cluster.js';
import { processAlive, signalPid } from '../test/support/netns.js';
import { waitFor } from '../test/support/wait.js';

const labelFile = (label: string) => join(DEFAULT_STATE_ROOT, `${label}.run`);

function resolveRun(o: { label?: string; run?: string }): string | undefined {
  if (o.run) return o.run;
  const file = labelFile(o.label ?? 'default');
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
}

interface UpOptions {
  nodes: number;
  daemons: boolean;
  label: string;
  domain: string;
  leaseTtl: number;
  mount?: string;
  source: boolean;
  forward?: number;
  logLevel: string;
}

const READY = '#ready';
const FAILED = '#failed';
const keeperLog = (label: string) => join(DEFAULT_STATE_ROOT, `${label}.keeper.log`);

/** Starts the keeper in the background and relays its progress until it is ready or fails. */
async function up(o: UpOptions, argv: string[]): Promise<void> {
  const previous = resolveRun({ label: o.label });
  if (previous && existsSync(join(DEFAULT_STATE_ROOT, previous, 'state.json'))) {
    throw new Error(`a cluster labelled "${o.label}" is already up (run ${previous}); stop it with: down --label ${o.label}`);
  }
  if (o.daemons) {
    const built = builtPrograms();
    const missing = (['radiod', 'redirectord'] as const).filter((p) => !built[p]);
    if (missing.length) throw new Error(`not built: ${missing.join(', ')} (run npx tsc -p tsconfig.json, or use --no-daemons)`);
  }
  mkdirSync(DEFAULT_STATE_ROOT, { recursive: true });
  const log = keeperLog(o.label);
  const fd = openSync(log, 'w');
  const keeper = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), fileURLToPath(import.meta.url), 'keeper', ...argv], {
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  closeSync(fd);
  keeper.unref();
  let shown = 0;
  const deadline = Date.now() + 120_000;
  for (;;) {
    const text = readFileSync(log, 'utf8');
    const lines = text.split('\n');
    const complete = lines.slice(0, -1);
    for (const line of complete.slice(shown)) if (line !== READY && line !== FAILED) console.log(line);
    shown = complete.length;
    if (complete.includes(READY)) return;
    if (complete.includes(FAILED) || keeper.exitCode !== null || keeper.signalCode !== null || Date.now() > deadline) {
      if (keeper.exitCode === null) signalPid(keeper.pid!, 'SIGTERM');
      throw new Error(`cluster did not come up (keeper log: ${log})`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Runs in the background: owns the cluster until SIGTERM/SIGINT, then stops it. */
async function keep(o: UpOptions): Promise<void> {
  const cluster = await Cluster.start({
    nodes: o.nodes,
    daemons: o.daemons,
    domain: o.domain,
    leaseTtl: o.leaseTtl,
    logLevel: o.logLevel,
  }).catch((err: Error) => {
    console.log(err.message);
    console.log(FAILED);
    process.exit(1);
  });
  writeFileSync(labelFile(o.label), `${cluster.runId}\n`);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await cluster.stop();
    rmSync(labelFile(o.label), { force: true });
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  setInterval(() => undefined, 60_000);
  try {
    const t = cluster.timings!;
    console.log(`cluster ${cluster.runId} up in ${t.totalMs} ms (etcd healthy ${t.etcdHealthyMs} ms, Icecast ${Object.values(t.icecastAnswersMs).join('/')} ms)`);
    if (o.daemons) await cluster.waitDaemonsReady(30_000);
    let creds: { username: string; password: string } | undefined;
    if (o.mount) {
      const m = await cluster.createMount(o.mount);
      creds = m;
      console.log(`mount ${o.mount} created via ${m.via}; source credentials: ${m.username} / ${m.password}`);
    }
    const front = cluster.nodes[1] ?? cluster.nodes[0]!;
    if (o.mount && o.source && creds) {
      // Through a node's front door (redirectord proxies the source to the master's Icecast).
      const url = `http://${front.ip}${o.mount}`;
      // Retried like a real broadcaster's client: the first attempts can come before the
      // master's Icecast has loaded the new mount (401), and after a master change.
      const ffmpeg = sineSourceArgv(url, creds.username, creds.password).map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
      cluster.spawn('client', 'source', ['bash', '-c', `while :; do ${ffmpeg}; sleep 1; done`]);
      await waitFor(`${o.mount} served on every node`, async () => {
        for (const n of cluster.nodes) if (!(await cluster.icecastMounts(n)).includes(o.mount!)) return false;
        return true;
      }, { timeoutMs: 30_000, intervalMs: 250 });
      console.log(`source: ffmpeg sine tone -> ${url} (client namespace ${cluster.clientNs}); served on all ${cluster.nodes.length} nodes`);
    }
    if (o.forward) {
      // 127.0.0.1:PORT -> node1, PORT+i -> node i; redirects between nodes are rewritten to these.
      const hostPorts: Record<string, string> = { [cluster.domain]: `127.0.0.1:${o.forward}` };
      for (const n of cluster.nodes) {
        hostPorts[n.ip] = `127.0.0.1:${o.forward + n.index}`;
        hostPorts[`${n.name}.${cluster.domain}`] = `127.0.0.1:${o.forward + n.index}`;
      }
      await cluster.forward(cluster.nodes[0]!, o.forward, hostPorts);
      for (const n of cluster.nodes) await cluster.forward(n, o.forward + n.index, hostPorts);
      printHowToListen(cluster, { ...o, forward: o.forward }, creds);
    }
    console.log(cluster.status());
    console.log(`keeper pid ${process.pid}`);
    console.log(READY);
  } catch (err) {
    console.log(`up failed: ${(err as Error).message}\n${cluster.describeLogs()}`);
    console.log(FAILED);
    await cluster.stop();
    rmSync(labelFile(o.label), { force: true });
    process.exit(1);
  }
}

function printHowToListen(c: Cluster, o: UpOptions & { forward: number }, creds: { username: string; password: string } | undefined): void {
  const base = `http://127.0.0.1:${o.forward}`;
  const mount = o.mount ?? '/stream.mp3';
  const self = `node --import tsx scripts/cluster.ts`;
  const lines = [
    '',
    `Cluster addresses exist only inside the namespaces; 127.0.0.1:${o.forward} forwards to node1's front door,`,
    `127.0.0.1:${o.forward + 1}..${o.forward + c.nodes.length} to node1..node${c.nodes.length} (redirects between nodes are rewritten to these ports).`,
    '',
    'Listen from this machine:',
    `  mpv ${base}${mount}.m3u          (playlist)`,
    `  mpv ${base}${mount}              (302 to a node's /_stream${mount})`,
    `  curl -sL ${base}${mount} | ffplay -nodisp -autoexit -`,
    `  curl -sL ${base}${mount} -o /tmp/demo.mp3 --max-time 10     (then play the file)`,
    `Status page: ${base}/    JSON: ${base}/status.json`,
    '',
    'Inside the cluster (real addresses and DNS):',
    `  ${self} exec --label ${o.label} client -- curl -sL http://${c.nodes[0]!.ip}${mount} --max-time 5 -o /dev/null -w '%{http_code} %{size_download}\\n'`,
    `  ${self} exec --label ${o.label} client -- dig @${c.nodes[0]!.ip} ${c.domain} A`,
    `  ${self} status --label ${o.label}`,
  ];
  if (creds) {
    const urls = c.etcdUrls.join(',');
    lines.push(
      '',
      `Send your own source: the demo tone holds ${mount}, so create another mount (radioctl prints its credentials)`,
      `  ${self} exec --label ${o.label} client -- node dist/radioctl/main.js create-mount /mine.mp3 --etcd-urls ${urls}`,
      `  ffmpeg -re -i some.mp3 -c:a libmp3lame -b:a 128k -content_type audio/mpeg -f mp3 icecast://source:PASSWORD@127.0.0.1:${o.forward}/mine.mp3`,
    );
  }
  lines.push('', o.label === 'demo' ? 'Stop everything: npm run demo -- --down' : `Stop everything: ${self} down --label ${o.label}`);
  for (const l of lines) console.log(l);
}

async function down(o: { label?: string; run?: string }): Promise<void> {
  const runId = resolveRun(o);
  if (!runId) {
    console.log(`no cluster labelled "${o.label ?? 'default'}" is recorded`);
    return;
  }
  if (existsSync(join(DEFAULT_STATE_ROOT, runId, 'state.json'))) {
    const cluster = Cluster.attach(runId);
    const owner = cluster.owner;
    if (processAlive(owner.pid, owner.startTime)) {
      // The keeper stops the cluster itself (it is the parent that reaps the processes).
      signalPid(owner.pid, 'SIGTERM');
      await waitFor('the keeper to stop the cluster', () => !processAlive(owner.pid, owner.startTime), { timeoutMs: 30_000, intervalMs: 100 }).catch(
        () => signalPid(owner.pid, 'SIGKILL'),
      );
    }
    await cluster.stop();
  } else {
    // State gone but namespaces may remain: remove them by name.
    await removeRunNamespaces(runId);
  }
  if (!o.run || o.label) {
    rmSync(labelFile(o.label ?? 'default'), { force: true });
    rmSync(keeperLog(o.label ?? 'default'), { force: true });
  }
  console.log(`cluster ${runId} stopped`);
}

const program = new Command('cluster').description('network-namespace cluster of autoradio nodes');
const which = (cmd: Command) =>
  cmd.option('--label <name>', 'label the run is recorded under', 'default').option('--run <id>', 'run id (overrides --label)');

program
  .command('up')
  .description('start a detached cluster')
  .addOption(new Option('--nodes <n>', 'number of nodes').default(3).argParser(Number))
  .option('--no-daemons', 'only etcd and Icecast')
  .option('--label <name>', 'record the run under this label', 'default')
  .option('--domain <domain>', 'cluster domain', 'radio.test')
  .addOption(new Option('--lease-ttl <s>', 'radiod lease TTL').default(5).argParser(Number))
  .option('--log-level <level>', 'daemon log level', 'info')
  .option('--mount <path>', 'create this mount')
  .option('--source', 'stream a sine tone to the mount', false)
  .addOption(new Option('--forward <port>', 'forward 127.0.0.1:PORT (and PORT+i per node) into the cluster').argParser(Number))
  .action((o: UpOptions) => up(o, process.argv.slice(3)));

// Internal: the background owner started by `up`, same options.
const keeperCmd = program.command('keeper', { hidden: true });
for (const opt of program.commands.find((c) => c.name() === 'up')!.options) keeperCmd.addOption(opt);
keeperCmd.action((o: UpOptions) => keep(o));

which(program.command('down').description('stop a cluster and everything it started')).action((o) => down(o));

which(program.command('status').description('show processes of a cluster')).action((o: { label?: string; run?: string }) => {
  const runId = resolveRun(o);
  if (!runId) {
    console.log('no such cluster; known runs: ' + (knownRuns().join(' ') || 'none'));
    return;
  }
  console.log(Cluster.attach(runId).status());
});

which(program.command('exec <node> <cmd...>').description('run a command in a node namespace (or "client")')).action(
  async (node: string, cmd: string[], o: { label?: string; run?: string }) => {
    const runId = resolveRun(o);
    if (!runId) throw new Error('no such cluster');
    const c = Cluster.attach(runId);
    const r = await c.execResult(node === 'client' ? 'client' : node, cmd, { timeoutMs: 60_000 });
    process.stdout.write(r.stdout);
    process.stderr.write(r.stderr);
    process.exitCode = r.code ?? 1;
  },
);

program
  .command('cleanup-stale')
  .description('remove namespaces and state of runs whose owner process is gone')
  .option('--all', 'also detached runs (CLI/demo clusters)', false)
  .action(async (o: { all: boolean }) => {
    const removed = await cleanupStale({ includeDetached: o.all });
    console.log(removed.length ? `removed: ${removed.join(' ')}` : 'nothing stale');
  });

program.parseAsync().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
