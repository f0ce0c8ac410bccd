import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mustRun } from './debian-root.js';

/**
 * The same packages under a lower version, to test an upgrade from an installed older release
 * to the current one: each .deb unpacked, its Version (and its exact dependencies on the other
 * autoradio packages) set to `current~older`, which dpkg orders before `current`, and packed
 * again. The maintainer scripts then see a real upgrade (`configure <old-version>`).
 */
export interface OlderPackages {
  dir: string;
  version: string;
  current: string;
  remove(): Promise<void>;
}

export async function olderPackages(debDir: string): Promise<OlderPackages> {
  const debs = (await readdir(debDir)).filter((f) => f.endsWith('.deb'));
  const current = (await mustRun('dpkg-deb', ['-f', join(debDir, debs[0]!), 'Version'])).stdout.trim();
  const version = `${current}~older`;
  await mustRun('dpkg', ['--compare-versions', version, 'lt', current]);
  const dir = await mkdtemp('/var/tmp/autoradio-older-debs-');
  const work = await mkdtemp('/var/tmp/autoradio-older-work-');
  try {
    for (const f of debs) {
      const tree = join(work, f);
      await mustRun('dpkg-deb', ['-R', join(debDir, f), tree]);
      const controlFile = join(tree, 'DEBIAN/control');
      const control = await readFile(controlFile, 'utf8');
      const relabelled = control
        .replace(/^Version: .*$/m, `Version: ${version}`)
        .replaceAll(`(= ${current})`, `(= ${version})`);
      await writeFile(controlFile, relabelled);
      const name = f.split('_')[0]!;
      await mustRun('dpkg-deb', ['--build', tree, join(dir, `${name}_${version}_all.deb`)]);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { dir, version, current, remove: () => rm(dir, { recursive: true, force: true }) };
}
