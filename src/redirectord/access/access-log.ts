import { createWriteStream, type WriteStream } from 'node:fs';
import type { Logger } from '../../common/logger.js';
import { errorMessage } from '../../common/errors.js';
import { formatAccessLogLine, type ListenerSession } from './access-log-line.js';

/**
 * The listener access log (`--access-log FILE`): one line per finished `/_stream` session,
 * appended. `reopen()` (on SIGHUP, which logrotate's postrotate sends) closes the file and opens
 * the path again, so a rotated file is left alone and a new one starts. A failing disk is logged
 * and never stops a listener's stream.
 */
export class AccessLog {
  private out: WriteStream;

  constructor(
    private readonly path: string,
    private readonly log: Logger,
  ) {
    this.out = this.open();
  }

  record(session: ListenerSession): void {
    this.out.write(`${formatAccessLogLine(session)}\n`);
  }

  reopen(): void {
    const old = this.out;
    this.out = this.open();
    old.end();
    this.log.info({ path: this.path }, 'access log reopened');
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.out.end(() => resolve()));
  }

  private open(): WriteStream {
    const s = createWriteStream(this.path, { flags: 'a', mode: 0o640 });
    s.on('error', (err) => this.log.error({ path: this.path, err: errorMessage(err) }, 'access log write failed'));
    return s;
  }
}

/** The access log of `--access-log`, reopened on every SIGHUP; undefined when the flag is absent. */
export function openAccessLog(path: string | undefined, log: Logger): AccessLog | undefined {
  if (!path) return undefined;
  const accessLog = new AccessLog(path, log);
  process.on('SIGHUP', () => accessLog.reopen());
  return accessLog;
}
