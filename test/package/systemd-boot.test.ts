import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../support/wait.js';
import { BootedRoot } from './booted-root.js';
import { PACKAGE_CACHE_DIR, builtPackages, installPackages, packageRoot } from './debian-root.js';

/**
 * The packages on Debian 13 as it really runs: the root booted with systemd 257 as PID 1
 * (systemd-nspawn), Debian 13's etcd and Icecast, the units started once DOMAIN is set. Every
 * daemon killed with SIGKILL comes back with no one acting; a reinstall (upgrade) leaves the
 * front door running, as README says; an error reaches `journalctl -p err`; purge leaves
 * nothing of ours. Every wait has a deadline.
 */

const repo = fileURLToPath(new URL('../../', import.meta.url));
const DAEMONS = ['etcd', 'icecast2', 'radiod', 'redirectord'];

test('Debian 13 booted with systemd runs and recovers the daemons', { timeout: 20 * 60_000 }, async (t) => {
  assert.equal(process.getuid?.(), 0, 'this test needs root (debootstrap, mount, systemd-nspawn)');
  const debDir = await builtPackages(repo, { cacheDir: PACKAGE_CACHE_DIR, log: (m) => t.diagnostic(m) });
  const root = await packageRoot(debDir, (m) => t.diagnostic(m));
  const booted: { box?: BootedRoot } = {};
  // The container powers off before its root is unmounted.
  t.after(async () => {
    await booted.box?.shutdown();
    await root.destroy();
  });
  await installPackages(root, debDir);
  // Debian 13 mounts a tmpfs on /tmp at boot: the upgrade takes its packages from /root.
  await cp(join(root.path, 'tmp/debs'), join(root.path, 'root/debs'), { recursive: true });
  const defaults = join(root.path, 'etc/default/autoradio');
  const text = await readFile(defaults, 'utf8');
  await writeFile(defaults, text.replace(/^DOMAIN=.*$/m, 'DOMAIN=radio.example.org\nAUTORADIO_IP=127.0.0.1'));

  const since = Date.now();
  const box = await BootedRoot.boot(root, { timeoutMs: 120_000 });
  booted.box = box;
  t.diagnostic(`booted in ${((Date.now() - since) / 1000).toFixed(1)} s; ${(await box.exec(['systemctl', '--version'])).stdout.split('\n')[0]}`);

  const allActive = async () => {
    const states = await Promise.all(DAEMONS.map(async (d) => [d, (await box.unit(d)).active] as const));
    return states.every(([, s]) => s === 'active') ? states : undefined;
  };

  await t.test('etcd, icecast2, radiod and redirectord run once DOMAIN is set', async () => {
    await waitFor('every unit active', allActive, { timeoutMs: 90_000, intervalMs: 500 }).catch(async (err: Error) => {
      const status = await box.exec(['systemctl', '--no-pager', 'status', ...DAEMONS]);
      assert.fail(`${err.message}\n${status.stdout.slice(-6000)}\n${box.consoleTail()}`);
    });
    // Icecast runs under the drop-in, supervised, not through its SysV script.
    const show = await box.mustExec(['systemctl', 'show', '-p', 'Restart', '-p', 'Type', '-p', 'User', 'icecast2']);
    assert.match(show.stdout, /Restart=always/);
    assert.match(show.stdout, /Type=exec/);
    assert.match(show.stdout, /User=icecast2/);
  });

  for (const [unit, deadlineMs] of [['icecast2', 20_000], ['radiod', 30_000], ['redirectord', 30_000]] as const) {
    await t.test(`kill -9 of ${unit} is recovered with no one acting`, async () => {
      const before = await box.unit(unit);
      assert.ok(before.pid > 0, `${unit} has a main pid`);
      const since = Date.now();
      // The shell's kill: minbase has no /bin/kill.
      await box.mustExec(['sh', '-c', `kill -9 ${before.pid}`]);
      await waitFor(`${unit} to run again`, async () => {
        const now = await box.unit(unit);
        return now.active === 'active' && now.pid > 0 && now.pid !== before.pid;
      }, { timeoutMs: deadlineMs, intervalMs: 250 });
      t.diagnostic(`${unit} back in ${((Date.now() - since) / 1000).toFixed(1)} s`);
    });
  }

  await t.test('an error event reaches journalctl -p err', async () => {
    // The installed logger under a real journal stream (JOURNAL_STREAM set by systemd), as a
    // unit of its own (no D-Bus in the root for systemd-run).
    const probe = "import('/usr/lib/autoradio/dist/common/logger.js').then((m) => { const l = m.createLogger('probe'); l.error('provoked error'); l.info('plain info'); })";
    await writeFile(join(root.path, 'etc/systemd/system/autoradio-log-probe.service'),
      `[Service]\nType=oneshot\nExecStart=/usr/bin/node -e "${probe}"\n`);
    await box.mustExec(['systemctl', 'daemon-reload']);
    await box.mustExec(['systemctl', 'start', 'autoradio-log-probe.service']);
    const errors = await waitFor('the error in the journal', async () => {
      const r = await box.exec(['journalctl', '--no-pager', '-p', 'err', '-u', 'autoradio-log-probe', '-o', 'cat']);
      return r.stdout.includes('provoked error') ? r.stdout : undefined;
    }, { timeoutMs: 15_000, intervalMs: 250 });
    assert.doesNotMatch(errors, /plain info/);
    assert.doesNotMatch(errors, /^<\d>/m, 'journald strips the priority prefix');
  });

  await t.test('a reinstall (upgrade) keeps redirectord running; systemctl restart replaces it', async () => {
    const before = await box.unit('redirectord');
    await box.mustExec(['sh', '-c', 'dpkg -i /root/debs/*.deb'], 300_000);
    const after = await box.unit('redirectord');
    const journal = await box.exec(['journalctl', '--no-pager', '-n', '40', '-u', 'redirectord', '-o', 'short-monotonic']);
    assert.deepEqual(after, before, `the upgrade left the front door alone\n${journal.stdout}`);
    await box.mustExec(['systemctl', 'restart', 'redirectord']);
    await waitFor('redirectord to run again', async () => {
      const now = await box.unit('redirectord');
      return now.active === 'active' && now.pid !== before.pid;
    }, { timeoutMs: 30_000, intervalMs: 250 });
  });

  await t.test('purge leaves nothing of ours; icecast2 goes back to Debian\'s start', async () => {
    await box.mustExec(['apt-get', 'purge', '-y', '-q', 'autoradio-server', 'autoradio-client', 'autoradio-common'], 300_000);
    for (const f of ['etc/default/autoradio', 'etc/autoradio', 'usr/lib/autoradio', 'var/cache/autoradio-radiod',
      'var/lib/autoradio-server', 'usr/lib/systemd/system/icecast2.service.d/autoradio.conf', 'usr/lib/systemd/system/radiod.service']) {
      assert.ok(!existsSync(join(root.path, f)), `/${f} is left after purge`);
    }
    const show = await box.mustExec(['systemctl', 'show', '-p', 'Restart', 'icecast2']);
    assert.match(show.stdout, /Restart=no/);
  });
});
