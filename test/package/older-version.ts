import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join, relative } from 'node:path';
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
  return relabelledPackages(debDir, (current) => `${current}~older`);
}

/**
 * The same packages under another version (`version(current)`), each unpacked tree first
 * passed to `edit` (which may change shipped files: their md5sums are written again).
 */
export async function relabelledPackages(
  debDir: string,
  version: (current: string) => string,
  edit?: (tree: string) => Promise<void>,
): Promise<OlderPackages> {
  const debs = (await readdir(debDir)).filter((f) => f.endsWith('.deb'));
  const current = (await mustRun('dpkg-deb', ['-f', join(debDir, debs[0]!), 'Version'])).stdout.trim();
  const relabelled = version(current);
  const dir = await mkdtemp('/var/tmp/autoradio-older-debs-');
  const work = await mkdtemp('/var/tmp/autoradio-older-work-');
  try {
    for (const f of debs) {
      const tree = join(work, f);
      await mustRun('dpkg-deb', ['-R', join(debDir, f), tree]);
      const controlFile = join(tree, 'DEBIAN/control');
      const control = await readFile(controlFile, 'utf8');
      await writeFile(controlFile, control
        .replace(/^Version: .*$/m, `Version: ${relabelled}`)
        .replaceAll(`(= ${current})`, `(= ${relabelled})`));
      if (edit) {
        await edit(tree);
        const files = (await readdir(tree, { recursive: true, withFileTypes: true }))
          .filter((e) => e.isFile())
          .map((e) => relative(tree, join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)))
          .filter((p) => !p.startsWith('DEBIAN/'))
          .sort();
        let sums = '';
        for (const p of files) sums += `${createHash('md5').update(await readFile(join(tree, p))).digest('hex')}  ${p}\n`;
        await writeFile(join(tree, 'DEBIAN/md5sums'), sums);
      }
      const name = f.split('_')[0]!;
      await mustRun('dpkg-deb', ['--build', tree, join(dir, `${name}_${relabelled}_all.deb`)]);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { dir, version: relabelled, current, remove: () => rm(dir, { recursive: true, force: true }) };
}
