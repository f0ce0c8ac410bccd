import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { execFile, execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcess, type Managed } from './processes.js';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

/**
 * A private Icecast 2.4 for tests, run as Debian's icecast2 user (it refuses root), with its
 * config in a temp dir that both the test (as root) and Icecast can read.
 */
export interface TestIcecast {
  port: number;
  host: string;
  url: string;
  dir: string;
  configPath: string;
  process: Managed;
  adminPassword: string;
  sourcePassword: string;
  /** Re-reads the config (SIGHUP); only once Icecast answers: a HUP during its start-up kills it. */
  reload(): void;
  stop(): Promise<void>;
}

export interface IcecastOptions {
  host?: string;
  port?: number;
  sourcePassword?: string;
  adminPassword?: string;
  /** Extra XML placed inside <icecast> (mounts, relays). */
  extraXml?: string;
  /** Runs the command inside a network namespace (`ip netns exec NAME ...`). */
  netns?: string;
}

export function icecastUser(): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', 'icecast2']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'icecast2']).toString().trim());
  return { uid, gid };
}

export function minimalIcecastConfig(o: {
  host: string;
  port: number;
  dir: string;
  sourcePassword: string;
  adminPassword: string;
  extraXml?: string;
}): string {
  return `<icecast>
  <location>test</location><admin>test@localhost</admin>
  <hostname>${o.host}</hostname>
  <limits><clients>2000</clients><sources>50</sources><queue-size>524288</queue-size>
    <client-timeout>30</client-timeout><header-timeout>15</header-timeout><source-timeout>10</source-timeout>
    <burst-on-connect>1</burst-on-connect><burst-size>65535</burst-size></limits>
  <authentication><source-password>${o.sourcePassword}</source-password><relay-password>${o.sourcePassword}</relay-password>
    <admin-user>admin</admin-user><admin-password>${o.adminPassword}</admin-password></authentication>
  <listen-socket><port>${o.port}</port><bind-address>${o.host}</bind-address></listen-socket>
  <fileserve>1</fileserve>
  <paths><basedir>/usr/share/icecast2</basedir><logdir>${o.dir}/log</logdir>
    <webroot>/usr/share/icecast2/web</webroot><adminroot>/usr/share/icecast2/admin</adminroot>
    <pidfile>${o.dir}/icecast.pid</pidfile></paths>
  <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>3</loglevel></logging>
  ${o.extraXml ?? ''}
</icecast>
`;
}

export async function icecastAnswers(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/status-json.xsl`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { icestats?: { server_id?: string } };
    return typeof body.icestats?.server_id === 'string';
  } catch {
    return false;
  }
}

/** One live mount as Icecast's public status page describes it. */
export interface IcecastSourceStats {
  listenurl: string;
  listeners: number;
  title?: string;
  server_type?: string;
}

/**
 * Mount paths that have a live source (or relay) on this Icecast, with their stats. Icecast's
 * JSON has `source` as an object for one mount, an array for several, absent for none.
 */
export async function icecastSources(url: string): Promise<Map<string, IcecastSourceStats>> {
  const res = await fetch(`${url}/status-json.xsl`, { signal: AbortSignal.timeout(2000) });
  const body = (await res.json()) as { icestats?: { source?: IcecastSourceStats | IcecastSourceStats[] } };
  const raw = body.icestats?.source;
  const list = raw === undefined ? [] : [raw].flat();
  return new Map(list.filter((s) => s.listenurl).map((s) => [new URL(s.listenurl).pathname, s]));
}

/** Prepares a directory Icecast (as icecast2) can read and log into. */
export async function makeIcecastDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'autoradio-icecast-'));
  const { uid, gid } = icecastUser();
  await chmod(dir, 0o755);
  await mkdir(join(dir, 'log'));
  await chown(join(dir, 'log'), uid, gid);
  await chown(dir, uid, gid);
  return dir;
}

export async function startIcecast(opts: IcecastOptions = {}): Promise<TestIcecast> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? (await freePort(host));
  const dir = await makeIcecastDir();
  const configPath = join(dir, 'icecast.xml');
  const sourcePassword = opts.sourcePassword ?? 'sourcepw1';
  const adminPassword = opts.adminPassword ?? 'adminpw1';
  await writeFile(
    configPath,
    minimalIcecastConfig({ host, port, dir, sourcePassword, adminPassword, extraXml: opts.extraXml }),
    { mode: 0o644 },
  );
  return launchIcecast({ host, port, dir, configPath, sourcePassword, adminPassword, netns: opts.netns });
}

/** Starts Icecast on an existing config file (e.g. one radiod rendered). */
export async function launchIcecast(o: {
  host: string;
  port: number;
  dir: string;
  configPath: string;
  sourcePassword: string;
  adminPassword: string;
  netns?: string;
}): Promise<TestIcecast> {
  const url = `http://${o.host}:${o.port}`;
  const base = ['setpriv', '--reuid=icecast2', '--regid=icecast', '--init-groups', 'icecast2', '-c', o.configPath];
  const argv = o.netns ? ['ip', 'netns', 'exec', o.netns, ...base] : base;
  const proc = startProcess(argv[0]!, argv.slice(1));
  const handle: TestIcecast = {
    ...o,
    url,
    process: proc,
    reload: () => void proc.child.kill('SIGHUP'),
    async stop() {
      await proc.stop('SIGTERM', 3000);
      await rm(o.dir, { recursive: true, force: true });
    },
  };
  if (!o.netns) {
    try {
      await waitFor('icecast answering', () => icecastAnswers(url), { timeoutMs: 10_000, intervalMs: 100 });
    } catch (err) {
      await handle.stop();
      throw new Error(`${(err as Error).message}\n${proc.output.join('\n')}`);
    }
  }
  return handle;
}

/**
 * HTTP status of an empty source PUT with these credentials on 127.0.0.1:port: 401 refused;
 * 200 accepted (Icecast holds it open until curl's 1 s limit), 403 accepted but the mount is busy.
 */
export function sourcePutStatus(port: number, password: string, mount: string): Promise<string> {
  return new Promise((resolve) => {
    execFile(
      'curl',
      ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'PUT', '-H', 'Content-Type: audio/mpeg', '-H', 'Expect:',
        '--data-binary', '', '-u', `source:${password}`, '-m', '1', `http://127.0.0.1:${port}${mount}`],
      (_err, stdout) => resolve(String(stdout).trim()),
    );
  });
}
