import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { lstat, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { relabelledPackages } from './older-version.js';
import { PACKAGE_CACHE_DIR, PACKAGE_SUITE, builtPackages, installPackages, packageRoot, run, unitDirectives } from './debian-root.js';

/**
 * Builds the .debs with `npm run deb` (once per source state, shared with smoke.test.ts), installs them with apt-get into a fresh Debian 13 root
 * and checks what an operator gets: files, user, permissions, systemd units, the start
 * condition on DOMAIN, the programs' --help, removal. Needs root, debootstrap and the Debian
 * mirror. AUTORADIO_DEBS=<dir> tests already built packages (and that dir's lintian.txt).
 */

const repo = fileURLToPath(new URL('../../', import.meta.url));

// The environment form of every daemon flag the contract names (SPEC.md); flags added later
// are found by scanning the sources, below.
const SPEC_ENV = [
  'DOMAIN', 'AUTORADIO_NAME', 'AUTORADIO_IP', 'AUTORADIO_ETCD_URLS', 'AUTORADIO_ETCD_CA', 'AUTORADIO_ETCD_CERT',
  'AUTORADIO_ETCD_KEY', 'AUTORADIO_STATSD', 'AUTORADIO_LOG_LEVEL', 'AUTORADIO_ICECAST_CONFIG',
  'AUTORADIO_ICECAST_PORT', 'AUTORADIO_ICECAST_RELOAD', 'AUTORADIO_BANDWIDTH', 'AUTORADIO_MAX_LISTENERS',
  'AUTORADIO_LEASE_TTL', 'AUTORADIO_LIQUIDSOAP', 'AUTORADIO_HTTP_PORT', 'AUTORADIO_DNS_PORT',
  'AUTORADIO_NAMESERVERS', 'AUTORADIO_LB_POLICY', 'AUTORADIO_ENABLE_ICECAST_PROXY', 'AUTORADIO_DNS_TTL',
];

const PROGRAMS = [
  { name: 'radiod', user: 'icecast2', group: 'icecast', flag: '--icecast-config' },
  { name: 'redirectord', user: 'autoradio', group: 'autoradio', flag: '--dns-port' },
  { name: 'radioctl', user: 'autoradio', group: 'autoradio', flag: 'create-mount' },
];

/** Environment variables that the daemons' flags read, from `.env('NAME')` in the sources. */
async function envNamesInSources(): Promise<string[]> {
  const names = new Set<string>();
  for (const dir of ['src/common', 'src/coordination', 'src/radiod', 'src/redirectord']) {
    const entries = await readdir(join(repo, dir), { recursive: true }).catch(() => [] as string[]);
    for (const entry of entries) {
      if (!entry.endsWith('.ts')) continue;
      const text = await readFile(join(repo, dir, entry), 'utf8');
      for (const m of text.matchAll(/\.env\(\s*['"]([A-Z][A-Z0-9_]*)['"]/g)) names.add(m[1]!);
    }
  }
  return [...names].sort();
}

test('Debian packages build, pass lintian and install on Debian 13', { timeout: 30 * 60_000 }, async (t) => {
  assert.equal(process.getuid?.(), 0, 'this test needs root (debootstrap, chroot, mount)');
  const t0 = Date.now();
  const lap = (what: string, since: number) => t.diagnostic(`${what}: ${((Date.now() - since) / 1000).toFixed(1)} s`);

  let debDir = '';
  await t.test('npm run deb builds three packages', async () => {
    const since = Date.now();
    debDir = await builtPackages(repo, { cacheDir: PACKAGE_CACHE_DIR, log: (m) => t.diagnostic(m) });
    const debs = (await readdir(debDir)).filter((f) => f.endsWith('.deb')).sort();
    assert.deepEqual(
      debs.map((f) => f.split('_')[0]),
      ['autoradio-client', 'autoradio-common', 'autoradio-server'],
    );
    lap('build', since);
  });

  await t.test('lintian reports no errors', async () => {
    const report = await readFile(join(debDir, 'lintian.txt'), 'utf8');
    const errors = report.split('\n').filter((l) => l.startsWith('E: '));
    for (const w of report.split('\n').filter((l) => l.startsWith('W: '))) t.diagnostic(`lintian ${w}`);
    assert.deepEqual(errors, []);
    // Maintainer scripts restart units through deb-systemd-invoke, which honours policy-rc.d.
    assert.deepEqual(report.split('\n').filter((l) => l.includes('maintainer-script-calls-systemctl')), []);
  });

  assert.ok(debDir, 'no packages were built');
  let since = Date.now();
  const root = await packageRoot(debDir, (m) => t.diagnostic(m));
  t.after(() => root.destroy());
  lap('Debian root ready', since);
  // icecast2 is in the dependency layer: this is Debian's own configuration, before ours.
  const debianIcecastXml = await readFile(join(root.path, 'etc/icecast2/icecast.xml'), 'utf8');

  await t.test('apt-get installs the packages and their dependencies', async () => {
    since = Date.now();
    const r = await installPackages(root, debDir);
    lap('install', since);
    assert.match(r.stdout, /Setting up autoradio-server/);
    assert.match(r.stdout, /set DOMAIN in \/etc\/default\/autoradio/);
    const status = await root.mustExec(['dpkg-query', '-W', '-f', '${Package} ${db:Status-Abbrev}\n', 'autoradio-*']);
    assert.deepEqual(status.stdout.trim().split('\n').map((l) => l.trimEnd()).sort(), [
      'autoradio-client ii',
      'autoradio-common ii',
      'autoradio-server ii',
    ]);
    const node = await root.mustExec(['node', '--version']);
    t.diagnostic(`Node.js in ${PACKAGE_SUITE}: ${node.stdout.trim()}`);
  });

  await t.test('files are where the units and wrappers expect them', async () => {
    for (const f of ['usr/bin/radiod', 'usr/bin/redirectord', 'usr/bin/radioctl', 'usr/lib/autoradio/check-domain']) {
      const r = await root.exec(['test', '-x', `/${f}`]);
      assert.equal(r.code, 0, `/${f} is not an executable file`);
    }
    for (const f of ['usr/lib/autoradio/package.json', 'usr/lib/autoradio/dist/common/flags.js',
      'usr/lib/autoradio/node_modules/etcd3/package.json', 'etc/default/autoradio']) {
      assert.ok(existsSync(join(root.path, f)), `/${f} is missing`);
    }
    // Debian 13 has merged /usr: nothing of ours under /lib, or purge warns it is not empty.
    const listed = (await root.mustExec(['dpkg', '-L', 'autoradio-server'])).stdout.split('\n');
    assert.deepEqual(listed.filter((f) => f.startsWith('/lib/')), []);
    assert.ok(listed.includes('/usr/lib/systemd/system/icecast2.service.d/autoradio.conf'));
    // /etc/default/autoradio is the operator's (no conffile prompt on upgrades): postinst copied
    // it from the shipped template on installation.
    const conffiles = await root.mustExec(['dpkg-query', '-W', '-f', '${Conffiles}', 'autoradio-server']);
    assert.doesNotMatch(conffiles.stdout, /\/etc\/default\/autoradio /);
    assert.equal(await readFile(join(root.path, 'etc/default/autoradio'), 'utf8'),
      await readFile(join(root.path, 'usr/share/autoradio-server/autoradio.default'), 'utf8'));
  });

  await t.test('/etc/default/autoradio sets DOMAIN= and lists every other variable commented', async () => {
    const text = await readFile(join(root.path, 'etc/default/autoradio'), 'utf8');
    assert.match(text, /^DOMAIN=$/m);
    const uncommented = text.split('\n').filter((l) => /^[A-Z]/.test(l));
    assert.deepEqual(uncommented, ['DOMAIN='], 'only DOMAIN is set by default');
    const scanned = await envNamesInSources();
    t.diagnostic(`environment variables read by the daemons' flags: ${scanned.join(' ')}`);
    const missing = [...new Set([...SPEC_ENV, ...scanned])].filter(
      (n) => n !== 'DOMAIN' && !new RegExp(`^#${n}=`, 'm').test(text),
    );
    assert.deepEqual(missing, [], 'variables missing from debian/autoradio.default');
  });

  await t.test('system user, group and the ownership radiod needs', async () => {
    const pw = await root.mustExec(['getent', 'passwd', 'autoradio']);
    const [, , uid, , , home, shell] = pw.stdout.trim().split(':');
    assert.ok(Number(uid) < 1000, `autoradio must be a system user (uid ${uid})`);
    assert.equal(home, '/nonexistent');
    assert.equal(shell, '/usr/sbin/nologin');
    await root.mustExec(['getent', 'group', 'autoradio']);
    const stat = async (p: string) => (await root.mustExec(['stat', '-c', '%U:%G %a', p])).stdout.trim();
    assert.equal(await stat('/etc/icecast2'), 'icecast2:icecast 755');
    assert.equal(await stat('/etc/icecast2/icecast.xml'), 'icecast2:icecast 640');
    assert.equal(await stat('/etc/autoradio'), 'root:autoradio 750');
    // radiod's user can replace the file atomically, as its unit allows.
    const w = await root.exec(['sh', '-c', 'cp /etc/icecast2/icecast.xml /etc/icecast2/.t && mv /etc/icecast2/.t /etc/icecast2/icecast.xml'], {
      user: 'icecast2:icecast',
    });
    assert.equal(w.code, 0, w.stderr);
  });

  await t.test('systemd units verify, are enabled and sandboxed', async () => {
    const verify = await root.exec(['systemd-analyze', 'verify', 'radiod.service', 'redirectord.service']);
    assert.equal(verify.code, 0, verify.stderr);
    assert.equal(verify.stderr.trim(), '', 'systemd-analyze verify printed warnings');
    for (const name of ['radiod', 'redirectord']) {
      const wants = await lstat(join(root.path, `etc/systemd/system/multi-user.target.wants/${name}.service`)).catch(() => null);
      assert.ok(wants?.isSymbolicLink(), `${name}.service is not enabled`);
      const unit = unitDirectives(await readFile(join(root.path, `usr/lib/systemd/system/${name}.service`), 'utf8'));
      assert.deepEqual(unit.get('EnvironmentFile'), ['-/etc/default/autoradio']);
      assert.deepEqual(unit.get('ExecCondition'), ['/usr/lib/autoradio/check-domain']);
      assert.deepEqual(unit.get('ExecStart'), [`/usr/bin/${name}`]);
      assert.deepEqual(unit.get('Restart'), ['on-failure']);
      for (const k of ['NoNewPrivileges', 'ProtectHome', 'PrivateTmp']) assert.deepEqual(unit.get(k), ['yes'], k);
      assert.deepEqual(unit.get('ProtectSystem'), ['strict']);
      const sec = await root.exec(['systemd-analyze', 'security', '--offline=yes', `/usr/lib/systemd/system/${name}.service`]);
      const level = /Overall exposure level for \S+: ([\d.]+)/.exec(sec.stdout);
      assert.ok(level, sec.stdout + sec.stderr);
      t.diagnostic(`${name}.service exposure level ${level[1]}`);
      assert.ok(Number(level[1]) < 3, `${name}.service exposure ${level[1]}`);
    }
    const radiod = unitDirectives(await readFile(join(root.path, 'usr/lib/systemd/system/radiod.service'), 'utf8'));
    assert.deepEqual(radiod.get('User'), ['icecast2']);
    assert.deepEqual(radiod.get('ReadWritePaths'), ['/etc/icecast2']);
    const redirectord = unitDirectives(await readFile(join(root.path, 'usr/lib/systemd/system/redirectord.service'), 'utf8'));
    assert.deepEqual(redirectord.get('User'), ['autoradio']);
    assert.deepEqual(redirectord.get('AmbientCapabilities'), ['CAP_NET_BIND_SERVICE']);
  });

  await t.test('the units skip their start until DOMAIN is set', async () => {
    // What systemd runs as ExecCondition, with the shipped file as environment.
    const text = await readFile(join(root.path, 'etc/default/autoradio'), 'utf8');
    const env = Object.fromEntries(
      text.split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    const unset = await root.exec(['/usr/lib/autoradio/check-domain'], { env });
    assert.equal(unset.code, 1);
    assert.match(unset.stdout, /DOMAIN is not set in \/etc\/default\/autoradio/);
    const set = await root.exec(['/usr/lib/autoradio/check-domain'], { env: { DOMAIN: 'stream.example.org' } });
    assert.equal(set.code, 0);
  });

  await t.test('the generator writes redirectord.socket only once DOMAIN is set, on the configured port', async () => {
    const generator = '/usr/lib/systemd/system-generators/autoradio-redirectord-socket';
    const generate = async (dir: string) => {
      await root.mustExec(['mkdir', '-p', `${dir}/normal`, `${dir}/early`, `${dir}/late`]);
      await root.mustExec([generator, `${dir}/normal`, `${dir}/early`, `${dir}/late`]);
      return (await root.mustExec(['find', dir, '-mindepth', '1', '-printf', '%P\\n'])).stdout.trim().split('\n').sort();
    };
    // As shipped: DOMAIN is empty, so nothing may hold port 80.
    assert.deepEqual(await generate('/tmp/gen-unset'), ['early', 'late', 'normal']);
    const defaults = join(root.path, 'etc/default/autoradio');
    const shipped = await readFile(defaults, 'utf8');
    try {
      await writeFile(defaults, shipped.replace(/^DOMAIN=$/m, 'DOMAIN="radio.example.org"\nAUTORADIO_HTTP_PORT=8080\nAUTORADIO_HTTP_BIND=192.0.2.10'));
      assert.deepEqual(await generate('/tmp/gen-set'), [
        'early', 'late', 'normal', 'normal/redirectord.socket', 'normal/sockets.target.wants', 'normal/sockets.target.wants/redirectord.socket',
      ]);
      const socket = unitDirectives(await readFile(join(root.path, 'tmp/gen-set/normal/redirectord.socket'), 'utf8'));
      assert.deepEqual(socket.get('ListenStream'), ['192.0.2.10:8080']);
      assert.deepEqual(socket.get('FileDescriptorName'), ['http']);
      await writeFile(defaults, shipped.replace(/^DOMAIN=$/m, 'DOMAIN=radio.example.org\nAUTORADIO_HTTP_BIND=2001:db8::10'));
      await generate('/tmp/gen-v6');
      const v6 = unitDirectives(await readFile(join(root.path, 'tmp/gen-v6/normal/redirectord.socket'), 'utf8'));
      assert.deepEqual(v6.get('ListenStream'), ['[2001:db8::10]:80']);
      // The generated unit as systemd loads it, next to the service it activates.
      await root.mustExec(['cp', '/tmp/gen-v6/normal/redirectord.socket', '/etc/systemd/system/redirectord.socket']);
      const verify = await root.exec(['systemd-analyze', 'verify', 'redirectord.socket', 'redirectord.service']);
      assert.equal(verify.code, 0, verify.stderr);
      assert.equal(verify.stderr.trim(), '', 'systemd-analyze verify printed warnings');
      // An IPv6 zone: systemd cannot listen on it ("[fe80::1%lo]:80" fails to parse), so no socket.
      await writeFile(defaults, shipped.replace(/^DOMAIN=$/m, 'DOMAIN=radio.example.org\nAUTORADIO_HTTP_BIND = fe80::1%lo\r'));
      assert.deepEqual(await generate('/tmp/gen-zone'), ['early', 'late', 'normal']);
    } finally {
      await writeFile(defaults, shipped);
      await root.exec(['rm', '-rf', '/etc/systemd/system/redirectord.socket', '/tmp/gen-unset', '/tmp/gen-set', '/tmp/gen-v6', '/tmp/gen-zone']);
    }
  });

  await t.test('the production modules load as the service user', async () => {
    const r = await root.exec(
      ['sh', '-c', `cd /usr/lib/autoradio && node --input-type=module -e '
        const pkg = JSON.parse(await (await import("node:fs/promises")).readFile("package.json", "utf8"));
        for (const d of Object.keys(pkg.dependencies)) await import(d);
        console.log(Object.keys(pkg.dependencies).length)'`],
      { user: 'autoradio:autoradio' },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Number(r.stdout.trim()) >= 5, r.stdout);
  });

  for (const p of PROGRAMS) {
    // Entry points other parts of the project are still writing: the only tolerated failure.
    const pending = ['src/' + p.name + '/main.ts', 'bin/' + p.name].filter((f) => !existsSync(join(repo, f)));
    const todo = pending.length > 0 ? `${pending.join(' and ')} not written yet` : undefined;
    await t.test(`${p.name} --help runs from the installed package as ${p.user}`, { todo }, async () => {
      const r = await root.exec([`/usr/bin/${p.name}`, '--help'], { user: `${p.user}:${p.group}`, groups: 'autoradio' });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Usage:/);
      assert.ok(r.stdout.includes(p.flag), `${p.name} --help does not mention ${p.flag}`);
    });
  }

  await t.test('an upgrade that ships new defaults keeps the hand-edited /etc/default/autoradio, asking nothing', async () => {
    // Every node edits the file (DOMAIN); a dpkg conffile would stop every later upgrade that
    // changes its comments at a prompt: waiting on a terminal, failing without one.
    const newer = await relabelledPackages(debDir, (current) => `${current}+next`, async (tree) => {
      for (const f of ['etc/default/autoradio', 'usr/share/autoradio-server/autoradio.default']) {
        if (existsSync(join(tree, f))) await writeFile(join(tree, f), `${await readFile(join(tree, f), 'utf8')}# A setting the next version adds.\n`);
      }
    });
    const defaults = join(root.path, 'etc/default/autoradio');
    const shipped = await readFile(defaults, 'utf8');
    const edited = shipped.replace(/^DOMAIN=$/m, 'DOMAIN=radio.example.org');
    try {
      await writeFile(defaults, edited);
      await root.mustExec(['mkdir', '-p', '/tmp/newer']);
      for (const f of (await readdir(newer.dir)).filter((x) => x.endsWith('.deb'))) {
        await writeFile(join(root.path, 'tmp/newer', f), await readFile(join(newer.dir, f)));
      }
      // No terminal and no --force-conf* option, as a script or CI job runs it.
      const upgrade = await root.exec(['sh', '-c', 'apt-get install -y -q --no-install-recommends /tmp/newer/*.deb </dev/null']);
      assert.equal(upgrade.code, 0, `${upgrade.stdout.slice(-3000)}\n${upgrade.stderr.slice(-2000)}`);
      const state = await root.mustExec(['dpkg-query', '-W', '-f', '${db:Status-Abbrev}${Version}\n', 'autoradio-server']);
      assert.equal(state.stdout.trim(), `ii ${newer.version}`);
      assert.equal(await readFile(defaults, 'utf8'), edited);
    } finally {
      await writeFile(defaults, shipped);
      await newer.remove();
    }
  });

  await t.test('removal gives icecast2 its files back; purge removes the rest', async () => {
    await root.mustExec(['apt-get', 'remove', '-y', '-q', 'autoradio-server']);
    const list = await root.exec(['dpkg-statoverride', '--list', '/etc/icecast2/*']);
    assert.equal(list.stdout.trim(), '');
    const st = await root.mustExec(['stat', '-c', '%U:%G %a', '/etc/icecast2', '/etc/icecast2/icecast.xml']);
    assert.deepEqual(st.stdout.trim().split('\n'), ['root:root 755', 'root:icecast 640']);
    // What a node that ran leaves: radiod's configuration with passwords, liquidsoap's cache,
    // redirectord's access logs.
    await root.mustExec(['sh', '-c', 'echo "<icecast><authentication><source-password>s3cret</source-password></authentication></icecast>" > /etc/icecast2/icecast.xml']);
    await root.mustExec(['sh', '-c', 'mkdir -p /var/cache/autoradio-radiod && touch /var/cache/autoradio-radiod/x.liq-cache']);
    await root.mustExec(['sh', '-c', 'mkdir -p /var/log/autoradio && touch /var/log/autoradio/access.log /var/log/autoradio/access.log.2.gz']);
    const purge = await root.mustExec(['apt-get', 'purge', '-y', '-q', 'autoradio-server', 'autoradio-client', 'autoradio-common']);
    assert.doesNotMatch(`${purge.stdout}${purge.stderr}`, /not empty so not removed/);
    assert.equal(await readFile(join(root.path, 'etc/icecast2/icecast.xml'), 'utf8'), debianIcecastXml, "purge restores Debian's icecast.xml");
    for (const f of ['etc/default/autoradio', 'etc/autoradio', 'usr/lib/autoradio', 'usr/bin/radiod', 'var/cache/autoradio-radiod',
      'var/lib/autoradio-server', 'usr/lib/systemd/system/icecast2.service.d/autoradio.conf',
      'usr/lib/systemd/system-generators/autoradio-redirectord-socket', 'var/log/autoradio']) {
      assert.ok(!existsSync(join(root.path, f)), `/${f} is left after purge`);
    }
    const so = await run('chroot', [root.path, 'dpkg-statoverride', '--list']);
    assert.doesNotMatch(so.stdout, /autoradio|icecast/);
  });

  lap('whole package test', t0);
});
