import { readFile, rename, writeFile } from 'node:fs/promises';
import type { Logger } from '../common/logger.js';
import { errorMessage } from '../common/errors.js';

/**
 * Where radiod notes its election lease, so that the next radiod on this node (after a kill -9
 * or a crash, restarted by systemd a second later) can revoke it at once instead of leaving the
 * master role to expire with it a TTL later. Under /run: a reboot forgets it, as etcd has long
 * forgotten the lease by then. A missing directory only disables the shortcut.
 */
export class LeaseFile {
  constructor(
    private readonly path: string,
    private readonly log: Logger,
  ) {}

  /** The lease id the previous radiod noted, if any (decimal, as etcd grants it). */
  async previous(): Promise<string | undefined> {
    try {
      const text = (await readFile(this.path, 'utf8')).trim();
      return /^[1-9][0-9]{0,19}$/.test(text) ? text : undefined;
    } catch {
      return undefined;
    }
  }

  async record(leaseId: string): Promise<void> {
    const tmp = `${this.path}.tmp`;
    try {
      await writeFile(tmp, `${leaseId}\n`, { mode: 0o600 });
      await rename(tmp, this.path);
    } catch (err) {
      this.log.debug({ err: errorMessage(err), path: this.path }, 'cannot note the election lease; a restart waits for its expiry');
    }
  }
}
