import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  PACKAGE_CACHE_DIR,
  builtPackages,
  installPackages,
  mustRun,
  packageRoot,
  run,
  unitDirectives,
  type DebianRoot,
} from './debian-root.js';
import { freePort } from '../support/ports.js';
import { startProcess, type Managed } from '../support/processes.js';
import { icecastAnswers, icecastSources } from '../support/icecast.js';
import { waitFor } from '../support/wait.js';
import { sequentialSteps } from './steps.js';

/**
 * The installed packages at work: in a fresh Debian 13 root holding the .debs, Debian's own
 * etcd and Icecast run next to /usr/bin/radiod and /usr/bin/redirectord, started the way their
 * systemd units start them (user, groups, umask, environment from /etc/default/autoradio).
 * The root shares the host's network, so everything listens on free loopback ports. A mount
 * made with the installed radioctl carries an ffmpeg source through redirectord into Icecast;
 * a listener is redirected to /_stream and gets MP3; DNS answers for the domain.
 * Needs root, debootstrap and the Debian mirror (first run), ffmpeg, ffprobe, curl and dig.
 * Shares the package build and the cached root layers with deb.test.ts (AUTORADIO_DEBS=<dir>
 * tests packages built elsewhere).
 */

const repo = fileURLToPath(new URL('../../', import.meta.url));
const DOMAIN = 'smoke.autoradio.test';
const NODE = 'smoke1';
const MOUNT = '/smoke.mp3';
const ICECAST_CONFIG = '/etc/icecast2/icecast.xml';
const ICECAST_PIDFILE = '/run/icecast2/icecast.pid';
/** systemd's PATH for system services. */
const SERVICE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin';

interface Ports {
  etcd: number;
  etcdPeer: number;
  icecast: number;
  http: number;
  dns: number;
  radiodMetrics: number;
  redirectordMetrics: number;
}

/** Parses an EnvironmentFile the way systemd does for plain `KEY=value` lines. */
function environmentFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

/** Sets `KEY=value` in the shipped /etc/default/autoradio, where it is listed (commented or not). */
function setVariable(text: string, key: string, value: string): string {
  const re = new RegExp(`^#?${key}=.*$`, 'm');
  assert.match(text, re, `/etc/default/autoradio does not list ${key}`);
  return text.replace(re, `${key}=${value}`);
}

/** Replaces exactly one occurrence, so a changed shipped file fails loudly instead of silently. */
function replaceOnce(text: string, from: string, to: string): string {
  const at = text.indexOf(from);
  assert.ok(at >= 0 && text.indexOf(from, at + 1) < 0, `expected exactly one "${from}" in the shipped icecast.xml`);
  return text.slice(0, at) + to + text.slice(at + from.length);
}

/** How systemd would start a unit of the installed package, reduced to what a chroot can do. */
interface UnitLaunch {
  user: string;
  group: string;
  supplementary: string[];
  umask: string | undefined;
  execStart: string[];
  execCondition: string[];
  environment: Record<string, string>;
  cacheDirectories: string[];
}

function one(unit: Map<string, string[]>, key: string): string | undefined {
  const v = unit.get(key);
  return v?.[v.length - 1];
}

async function unitLaunch(root: DebianRoot, name: string): Promise<UnitLaunch> {
  const unit = unitDirectives(await readFile(join(root.path, `usr/lib/systemd/system/${name}.service`), 'utf8'));
  const user = one(unit, 'User');
  const group = one(unit, 'Group');
  assert.ok(user && group, `${name}.service names no User= and Group=`);
  // %C is the cache root of system units; the units use no other specifier.
  const expand = (v: string) => v.replaceAll('%C', '/var/cache');
  const environment: Record<string, string> = {};
  for (const line of unit.get('Environment') ?? []) {
    for (const assignment of line.split(/\s+/).filter(Boolean)) {
      const eq = assignment.indexOf('=');
      environment[assignment.slice(0, eq)] = expand(assignment.slice(eq + 1));
    }
  }
  return {
    user,
    group,
    supplementary: (unit.get('SupplementaryGroups') ?? []).flatMap((g) => g.split(/\s+/)).filter(Boolean),
    umask: one(unit, 'UMask'),
    execStart: (one(unit, 'ExecStart') ?? '').split(/\s+/).filter(Boolean),
    execCondition: (one(unit, 'ExecCondition') ?? '').split(/\s+/).filter(Boolean),
    environment,
    cacheDirectories: (unit.get('CacheDirectory') ?? []).flatMap((d) => d.split(/\s+/)).filter(Boolean),
  };
}

/** The user's home, shell and name as systemd puts them in a service's environment. */
async function userEnvironment(root: DebianRoot, user: string): Promise<Record<string, string>> {
  const pw = (await root.mustExec(['getent', 'passwd', user])).stdout.trim().split(':');
  return { USER: user, LOGNAME: user, HOME: pw[5] ?? '/', SHELL: pw[6] ?? '/bin/sh' };
}

/** `chroot` execs its command (and `sh -c 'exec ...'` too), so the pid held is the daemon's. */
function chrootArgs(root: DebianRoot, user: string, group: string, groups: string[], umask: string | undefined, argv: string[]): string[] {
  const spec = [`--userspec=${user}:${group}`];
  if (groups.length > 0) spec.push(`--groups=${[group, ...groups].join(',')}`);
  const shell = umask ? ['/bin/sh', '-c', `umask ${umask} && exec "$@"`, 'sh'] : [];
  return [...spec, root.path, ...shell, ...argv];
}

function startSource(port: number, username: string, password: string): Managed {
  return startProcess('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-re',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-c:a', 'libmp3lame', '-b:a', '128k', '-content_type', 'audio/mpeg', '-f', 'mp3',
    `icecast://${username}:${password}@127.0.0.1:${port}${MOUNT}`,
  ]);
}

function lastLines(p: Managed | undefined, n = 30): string {
  return p ? p.output.slice(-n).join('\n') : '(not started)';
}

test('the installed daemons run a stream end to end on Debian 13', { timeout: 20 * 60_000 }, async (t) => {
  assert.equal(process.getuid?.(), 0, 'this test needs root (debootstrap, chroot, mount)');
  const t0 = Date.now();
  const lap = (what: string, since: number) => t.diagnostic(`${what}: ${((Date.now() - since) / 1000).toFixed(1)} s`);

  const step = sequentialSteps(t);

  let since = Date.now();
  const debDir = await builtPackages(repo, { cacheDir: PACKAGE_CACHE_DIR, log: (m) => t.diagnostic(m) });
  lap('packages ready', since);
  since = Date.now();
  const root = await packageRoot(debDir, (m) => t.diagnostic(m));
  lap('Debian root ready', since);

  const scratch = await mkdtemp(join(tmpdir(), 'autoradio-smoke-'));
  const managed = new Map<string, Managed>();
  const sources: Managed[] = [];
  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    await managed.get('listener')?.stop('SIGKILL');
    await Promise.all(sources.map((s) => s.stop('SIGKILL')));
    // Front door and node daemon first (they talk to the others while stopping), etcd last.
    for (const name of ['redirectord', 'radiod', 'icecast2', 'etcd']) await managed.get(name)?.stop('SIGTERM', 10_000);
    try {
      await root.destroy();
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  };
  t.after(cleanup);

  const ports: Ports = {
    etcd: await freePort(),
    etcdPeer: await freePort(),
    icecast: await freePort(),
    http: await freePort(),
    dns: await freePort(),
    radiodMetrics: await freePort(),
    redirectordMetrics: await freePort(),
  };
  const etcdUrl = `http://127.0.0.1:${ports.etcd}`;
  const icecastUrl = `http://127.0.0.1:${ports.icecast}`;
  const front = `http://127.0.0.1:${ports.http}`;
  t.diagnostic(`ports: ${JSON.stringify(ports)}`);

  const radioctl = (args: string[]) => root.exec(['/usr/bin/radioctl', '--etcd-urls', etcdUrl, ...args], { timeoutMs: 30_000 });

  await step('apt-get installs the packages', async () => {
    const r = await installPackages(root, debDir);
    assert.match(r.stdout, /Setting up autoradio-server/);
  });

  await step("Debian's etcd starts as user etcd", async () => {
    await root.mustExec(['install', '-d', '-o', 'etcd', '-g', 'etcd', '-m', '0700', '/var/lib/etcd/smoke']);
    const name = 'smoke';
    const peer = `http://127.0.0.1:${ports.etcdPeer}`;
    const etcd = startProcess(
      'chroot',
      chrootArgs(root, 'etcd', 'etcd', [], undefined, [
        '/usr/bin/etcd',
        '--name', name,
        '--data-dir', '/var/lib/etcd/smoke',
        '--listen-client-urls', etcdUrl,
        '--advertise-client-urls', etcdUrl,
        '--listen-peer-urls', peer,
        '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `${name}=${peer}`,
        '--initial-cluster-state', 'new',
        '--initial-cluster-token', `autoradio-smoke-${ports.etcd}`,
        '--log-level', 'warn',
      ]),
      { env: { PATH: SERVICE_PATH, HOME: '/var/lib/etcd' } },
    );
    managed.set('etcd', etcd);
    await waitFor(
      'etcd healthy',
      async () => {
        const res = await fetch(`${etcdUrl}/health`, { signal: AbortSignal.timeout(500) });
        return ((await res.json()) as { health?: string }).health === 'true';
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    ).catch((err: Error) => assert.fail(`${err.message}\n${lastLines(etcd)}`));
    const version = await root.mustExec(['etcd', '--version']);
    t.diagnostic(version.stdout.split('\n')[0] ?? '');
  });

  await step("Debian's Icecast starts as icecast2 on the package's icecast.xml, moved to a free port", async () => {
    // The operator's one change to the shipped file: the port (and loopback, and a pidfile so
    // radiod reloads this Icecast and no other on the machine).
    const shipped = await readFile(join(root.path, ICECAST_CONFIG), 'utf8');
    let xml = replaceOnce(shipped, '<port>8000</port>', `<port>${ports.icecast}</port>`);
    xml = replaceOnce(xml, '<!-- <bind-address>127.0.0.1</bind-address> -->', '<bind-address>127.0.0.1</bind-address>');
    xml = replaceOnce(xml, '<!-- <pidfile>/usr/share/icecast2/icecast.pid</pidfile> -->', `<pidfile>${ICECAST_PIDFILE}</pidfile>`);
    await writeFile(join(root.path, ICECAST_CONFIG), xml);
    await root.mustExec(['install', '-d', '-o', 'icecast2', '-g', 'icecast', '-m', '0755', '/run/icecast2']);
    const icecast = startProcess('chroot', chrootArgs(root, 'icecast2', 'icecast', [], undefined, ['/usr/bin/icecast2', '-c', ICECAST_CONFIG]), {
      env: { PATH: SERVICE_PATH, ...(await userEnvironment(root, 'icecast2')) },
    });
    managed.set('icecast2', icecast);
    await waitFor('Icecast answering', () => icecastAnswers(icecastUrl), { timeoutMs: 15_000, intervalMs: 100 }).catch(
      async (err: Error) => {
        const log = await readFile(join(root.path, 'var/log/icecast2/error.log'), 'utf8').catch(() => '');
        assert.fail(`${err.message}\n${lastLines(icecast)}\n${log.split('\n').slice(-20).join('\n')}`);
      },
    );
    await waitFor('the Icecast pidfile', async () => (await readFile(join(root.path, ICECAST_PIDFILE), 'utf8')).trim() === String(icecast.child.pid));
  });

  let env: Record<string, string> = {};
  await step('/etc/default/autoradio configures the node; the units\' start condition passes', async () => {
    let text = await readFile(join(root.path, 'etc/default/autoradio'), 'utf8');
    const settings: [string, string][] = [
      ['DOMAIN', DOMAIN],
      ['AUTORADIO_NAME', NODE],
      ['AUTORADIO_IP', '127.0.0.1'],
      ['AUTORADIO_ETCD_URLS', etcdUrl],
      ['AUTORADIO_ICECAST_PORT', String(ports.icecast)],
      ['AUTORADIO_ICECAST_BIND', '127.0.0.1'],
      ['AUTORADIO_ICECAST_PIDFILE', ICECAST_PIDFILE],
      ['AUTORADIO_HTTP_PORT', String(ports.http)],
      ['AUTORADIO_HTTP_BIND', '127.0.0.1'],
      ['AUTORADIO_DNS_PORT', String(ports.dns)],
      ['AUTORADIO_DNS_BIND', '127.0.0.1'],
      ['AUTORADIO_RADIOD_METRICS_LISTEN', `127.0.0.1:${ports.radiodMetrics}`],
      ['AUTORADIO_REDIRECTORD_METRICS_LISTEN', `127.0.0.1:${ports.redirectordMetrics}`],
    ];
    for (const [k, v] of settings) text = setVariable(text, k, v);
    await writeFile(join(root.path, 'etc/default/autoradio'), text);
    env = environmentFile(text);
    assert.deepEqual(Object.keys(env).sort(), settings.map(([k]) => k).sort());
    for (const name of ['radiod', 'redirectord']) {
      const unit = await unitLaunch(root, name);
      const r = await root.exec(unit.execCondition, { env: { PATH: SERVICE_PATH, ...env }, user: `${unit.user}:${unit.group}` });
      assert.equal(r.code, 0, `${name}'s ExecCondition refused: ${r.stdout}${r.stderr}`);
    }
  });

  const startUnit = async (name: string): Promise<Managed> => {
    const unit = await unitLaunch(root, name);
    for (const dir of unit.cacheDirectories) {
      await root.mustExec(['install', '-d', '-o', unit.user, '-g', unit.group, '-m', '0755', `/var/cache/${dir}`]);
    }
    const p = startProcess('chroot', chrootArgs(root, unit.user, unit.group, unit.supplementary, unit.umask, unit.execStart), {
      env: { PATH: SERVICE_PATH, ...(await userEnvironment(root, unit.user)), ...unit.environment, ...env },
    });
    managed.set(name, p);
    return p;
  };

  await step('radiod and redirectord start from /usr/bin as their units run them', async () => {
    const radiod = await startUnit('radiod');
    const redirectord = await startUnit('redirectord');
    for (const [name, port] of [['radiod', ports.radiodMetrics], ['redirectord', ports.redirectordMetrics]] as const) {
      const body = await waitFor(
        `${name} /metrics`,
        async () => {
          const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(1000) });
          return res.status === 200 ? res.text() : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 100 },
      ).catch((err: Error) => assert.fail(`${err.message}\nradiod:\n${lastLines(radiod)}\nredirectord:\n${lastLines(redirectord)}`));
      assert.match(body, /^# TYPE /m);
    }
    // The processes run as the units' users, from the installed wrapper's node.
    for (const [name, user] of [['radiod', 'icecast2'], ['redirectord', 'autoradio']] as const) {
      const pid = managed.get(name)!.child.pid!;
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
      assert.deepEqual(cmdline.slice(0, 2), ['/usr/bin/node', `/usr/lib/autoradio/bin/${name}`]);
      const uid = (await stat(`/proc/${pid}`)).uid;
      const expected = Number((await root.mustExec(['id', '-u', user])).stdout.trim());
      assert.equal(uid, expected, `${name} runs as uid ${uid}, not ${user}`);
    }
  });

  let credentials = { username: '', password: '' };
  await step('radioctl create-mount prints the source credentials', async () => {
    const r = await radioctl(['create-mount', MOUNT]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^mount: ${MOUNT.replace('.', '\\.')}$`, 'm'));
    const username = /^\s*source username: (\S+)$/m.exec(r.stdout)?.[1];
    const password = /^\s*source password: (\S+)$/m.exec(r.stdout)?.[1];
    assert.ok(username && password, r.stdout);
    credentials = { username, password };
  });

  await step('radiod becomes master and rewrites icecast.xml with the mount', async () => {
    const xml = await waitFor(
      'the mount in icecast.xml',
      async () => {
        const text = await readFile(join(root.path, ICECAST_CONFIG), 'utf8');
        return text.includes(`<mount-name>${MOUNT}</mount-name>`) && text.includes(`<password>${credentials.password}</password>`) ? text : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    ).catch((err: Error) => assert.fail(`${err.message}\nradiod:\n${lastLines(managed.get('radiod'))}`));
    // The master takes the source itself; any other node would relay the mount instead.
    assert.ok(!xml.includes('<relay>'), 'radiod rendered a relay: this node is not master');
    assert.ok(xml.includes(`<port>${ports.icecast}</port>`));
    assert.ok(xml.includes(`<pidfile>${ICECAST_PIDFILE}</pidfile>`));
    // radiod replaced the file; Icecast's user still owns it (dpkg-statoverride, UMask=0027).
    const st = await root.mustExec(['stat', '-c', '%U:%G %a', ICECAST_CONFIG]);
    assert.equal(st.stdout.trim(), 'icecast2:icecast 640');
  });

  let source: Managed | undefined;
  await step("an ffmpeg source streams through redirectord's port into Icecast", async () => {
    // Until Icecast has re-read the file (about a second after the HUP) it refuses the mount's
    // password and ffmpeg exits: start it again then.
    let attempts = 0;
    await waitFor(
      'the source live on Icecast',
      async () => {
        if (!source || source.child.exitCode !== null || source.child.signalCode !== null) {
          attempts++;
          source = startSource(ports.http, credentials.username, credentials.password);
          sources.push(source);
        }
        return (await icecastSources(icecastUrl)).has(MOUNT);
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    ).catch((err: Error) =>
      assert.fail(`${err.message}\nffmpeg:\n${lastLines(source)}\nredirectord:\n${lastLines(managed.get('redirectord'))}`),
    );
    t.diagnostic(`source connected after ${attempts} ffmpeg start(s)`);
    // Icecast's admin stats (with the password radiod wrote) show the source client is ffmpeg.
    const admin = /<admin-password>([^<]+)<\/admin-password>/.exec(await readFile(join(root.path, ICECAST_CONFIG), 'utf8'))?.[1];
    assert.ok(admin, 'icecast.xml has no admin password');
    const res = await fetch(`${icecastUrl}/admin/stats`, { headers: { authorization: `Basic ${Buffer.from(`admin:${admin}`).toString('base64')}` } });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /<user_agent>Lavf/);
  });

  await step('a listener is redirected to /_stream and receives MP3', async () => {
    const head = await waitFor(
      'a 302 from redirectord',
      async () => {
        const r = await run('curl', ['-s', '-o', '/dev/null', '-m', '5', '-w', '%{http_code} %{redirect_url}', `${front}${MOUNT}`]);
        return r.stdout.startsWith('302 ') ? r.stdout : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    assert.equal(head, `302 ${front}/_stream${MOUNT}`);

    const file = join(scratch, 'listener.mp3');
    // The stream never ends: curl stops at its deadline (exit 28) with what it received.
    const r = await run('curl', ['-s', '-L', '-m', '3', '-o', file, '-w', '%{http_code} %{url_effective} %{content_type}', `${front}${MOUNT}`]);
    assert.equal(r.code, 28, `curl exited ${r.code}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^200 ${front}/_stream${MOUNT.replace('.', '\\.')} audio/mpeg`));
    const size = (await stat(file)).size;
    t.diagnostic(`listener received ${size} bytes in 3 s`);
    assert.ok(size >= 32_000, `only ${size} bytes`);
    const probe = await mustRun('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,sample_rate,bit_rate', '-of', 'json', file]);
    const streams = (JSON.parse(probe.stdout) as { streams: { codec_name: string; sample_rate: string; bit_rate?: string }[] }).streams;
    assert.equal(streams.length, 1);
    assert.equal(streams[0]!.codec_name, 'mp3');
    assert.equal(streams[0]!.sample_rate, '44100');
    assert.equal(streams[0]!.bit_rate, '128000');
  });

  await step('DNS answers the domain with this node, authoritatively', async () => {
    const r = await mustRun('dig', ['@127.0.0.1', '-p', String(ports.dns), '+tries=1', '+time=2', DOMAIN, 'A']);
    assert.match(r.stdout, /status: NOERROR/);
    assert.match(r.stdout, /;; flags: [^;]*\baa\b/);
    const answers = [...r.stdout.matchAll(/^(\S+)\s+(\d+)\s+IN\s+A\s+(\S+)$/gm)].map((m) => [m[1], m[3]]);
    assert.deepEqual(answers, [[`${DOMAIN}.`, '127.0.0.1']]);
  });

  await step('radioctl status shows the node as master, with its listener', async () => {
    const listener = startProcess('curl', ['-s', '-L', '-o', '/dev/null', `${front}${MOUNT}`]);
    managed.set('listener', listener);
    const summary = await waitFor(
      'the listener in radioctl status --json',
      async () => {
        const r = await radioctl(['status', '--json']);
        const s = JSON.parse(r.stdout) as { master?: string; mounts: { path: string; listeners: number }[] };
        return s.mounts.find((m) => m.path === MOUNT)?.listeners === 1 ? s : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 300 },
    );
    assert.equal(summary.master, NODE);
    const text = await radioctl(['status']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^master: ${NODE}$`, 'm'));
    // The role column, then the node's version.
    assert.match(text.stdout, new RegExp(`^${NODE}\\s+127\\.0\\.0\\.1\\s+ok\\s.*\\smaster(\\s|$)`, 'm'));
    await listener.stop('SIGKILL');
  });

  await step('everything stops: the daemons exit cleanly and no process is left in the root', async () => {
    await Promise.all(sources.map((s) => s.stop('SIGKILL')));
    for (const name of ['redirectord', 'radiod']) {
      const p = managed.get(name)!;
      await p.stop('SIGTERM', 10_000);
      assert.equal(p.child.exitCode, 0, `${name} exited ${p.child.exitCode ?? p.child.signalCode}\n${lastLines(p)}`);
    }
    for (const name of ['icecast2', 'etcd']) await managed.get(name)!.stop('SIGTERM', 10_000);
    assert.deepEqual(await root.processes(), []);
  });

  await cleanup();
  lap('whole smoke test', t0);
});
