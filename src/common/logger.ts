import { fstatSync } from 'node:fs';
import { pino, type DestinationStream, type Logger } from 'pino';
import { renderLine, stdoutIsJournal, type LogFormat } from './log-output.js';

export type { Logger } from 'pino';
export { LOG_FORMATS, type LogFormat } from './log-output.js';
/** Paths that could hold a secret anywhere in a log event; pino replaces them before output. */
export const REDACTED_PATHS = [
  'password',
  'sourcePassword',
  '*.password',
  '*.sourcePassword',
  '*.*.password',
  'mount.password',
  'credentials',
  '*.credentials',
  'headers.authorization',
  'req.headers.authorization',
];

function journalOnStdout(): boolean {
  let st: { dev: number; ino: number } | undefined;
  try {
    st = fstatSync(1);
  } catch {
    st = undefined;
  }
  return stdoutIsJournal(process.env['JOURNAL_STREAM'], st);
}

/** stdout as pino writes it by default, or through renderLine when the line must change. */
function destination(format: LogFormat, journal: boolean): DestinationStream | undefined {
  if (format === 'json' && !journal) return undefined;
  const out = pino.destination({ dest: 1, sync: true });
  return { write: (line: string) => out.write(renderLine(line, { format, journal })) };
}

/**
 * A child's bindings are pino's parent bindings plus its own, concatenated: a child that names
 * a key its parent has (component, mount) would print that key twice in one JSON object. So
 * every child is made from the bare root with the merged bindings, the closest ones winning.
 */
function flattenChildren(bare: Logger): void {
  const pinoChild = bare.child;
  bare.child = function child(this: Logger, bindings, options) {
    return pinoChild.call(bare, { ...this.bindings(), ...bindings }, { level: this.level, ...options });
  } as Logger['child'];
}

/**
 * One event per line on stdout: pino's JSON, or text for people. Under systemd (stdout is the
 * journal) each line starts with its syslog priority, so journald files errors as errors.
 */
export function createLogger(name: string, level = 'info', format: LogFormat = 'json'): Logger {
  return loggerTo(name, level, destination(format, journalOnStdout()));
}

/** createLogger's logger writing to `stream` (pino's own stdout when undefined). Exported for tests. */
export function loggerTo(name: string, level: string, stream: DestinationStream | undefined): Logger {
  const options = {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: null,
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  const bare = stream ? pino(options, stream) : pino(options);
  flattenChildren(bare);
  return bare.child({ name, program: name });
}

/**
 * Logs an event at most once per interval per key: while etcd is down, retry loops fail ten
 * times a second and would drown the journal.
 */
export class ThrottledLog {
  private readonly lastAt = new Map<string, number>();
  private readonly suppressed = new Map<string, number>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 10_000,
  ) {}

  warn(key: string, fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    const last = this.lastAt.get(key);
    if (last !== undefined && now - last < this.intervalMs) {
      this.suppressed.set(key, (this.suppressed.get(key) ?? 0) + 1);
      return;
    }
    const suppressed = this.suppressed.get(key) ?? 0;
    this.lastAt.set(key, now);
    this.suppressed.delete(key);
    this.log.warn({ ...fields, ...(suppressed > 0 ? { suppressed } : {}) }, msg);
  }

  /** Forget a key once the condition cleared, so its next occurrence is logged at once. */
  clear(key: string): void {
    this.lastAt.delete(key);
    this.suppressed.delete(key);
  }
}
