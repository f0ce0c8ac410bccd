import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

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

/** One structured JSON event per line on stdout (journald keeps it). */
export function createLogger(name: string, level = 'info'): Logger {
  return pino({
    name,
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { program: name },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
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
