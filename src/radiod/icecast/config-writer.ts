import { randomBytes } from 'node:crypto';
import { chown, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Mode for a config file radiod creates itself. It holds the admin, relay and source
 * passwords, so it is not world-readable; Debian ships its icecast.xml as 0640 root:icecast
 * and an existing file keeps whatever mode and owner it had.
 */
export const NEW_CONFIG_MODE = 0o640;

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Replaces `path` with `content` atomically (temp file in the same directory, fsync, rename),
 * keeping the previous file's mode, owner and group; a new file gets NEW_CONFIG_MODE, the
 * caller's user and the directory's group (Icecast's group in both Debian's and the tests'
 * layout). Nothing is written when the content is unchanged. Returns whether it wrote.
 */
export async function writeConfigIfChanged(path: string, content: string): Promise<boolean> {
  const current = await readIfExists(path);
  if (current === content) return false;

  const dir = dirname(path);
  let mode = NEW_CONFIG_MODE;
  let uid: number | undefined;
  let gid: number;
  try {
    const st = await stat(path);
    mode = st.mode & 0o7777;
    uid = st.uid;
    gid = st.gid;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    gid = (await stat(dir)).gid;
  }

  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(content, 'utf8');
    // open() applies the umask: set the mode explicitly.
    await fh.chmod(mode);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  try {
    const myUid = process.getuid?.();
    const targetUid = uid ?? myUid;
    if (targetUid !== undefined && myUid !== undefined) {
      // Only root can give a file away; anyone may set a group they belong to.
      await chown(tmp, myUid === 0 ? targetUid : myUid, gid).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EPERM') throw err;
      });
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  // Make the rename itself durable.
  const dh = await open(dir, 'r').catch(() => undefined);
  if (dh) {
    await dh.sync().catch(() => {});
    await dh.close();
  }
  return true;
}
