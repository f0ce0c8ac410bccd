/**
 * What a pino JSON line becomes on its way out: JSON or a human-readable text line, each with
 * an sd-daemon `<N>` priority prefix when stdout is the journal. Pure: no I/O.
 */

export const LOG_FORMATS = ['json', 'text'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * pino level -> syslog priority (RFC 5424: 2 crit, 3 err, 4 warning, 6 info, 7 debug), which
 * journald stores as PRIORITY so that `journalctl -p err` finds errors.
 */
export function syslogPriority(pinoLevel: number): number {
  if (pinoLevel >= 60) return 2;
  if (pinoLevel >= 50) return 3;
  if (pinoLevel >= 40) return 4;
  if (pinoLevel >= 30) return 6;
  return 7;
}

const LEVEL_NAMES: ReadonlyArray<[number, string]> = [
  [60, 'FATAL'],
  [50, 'ERROR'],
  [40, 'WARN'],
  [30, 'INFO'],
  [20, 'DEBUG'],
  [0, 'TRACE'],
];

function levelName(level: number): string {
  return LEVEL_NAMES.find(([min]) => level >= min)![1];
}

/** pino writes `{"level":N,` first on every line: read it without parsing the whole line. */
const LEVEL_RE = /^\{"level":(\d+)/;

/** Keys the text format shows in fixed places instead of as key=value. */
const FIXED_KEYS = new Set(['level', 'time', 'msg', 'name', 'program', 'component']);

function textValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/** `2026-12-04T16:20:00.000Z ERROR radiod/icecast: msg key=value ...` (no trailing newline). */
export function textLine(event: Record<string, unknown>): string {
  const level = typeof event['level'] === 'number' ? event['level'] : 30;
  const who = [event['program'] ?? event['name'], event['component']].filter((x) => x !== undefined).join('/');
  const fields = Object.entries(event)
    .filter(([k]) => !FIXED_KEYS.has(k))
    .map(([k, v]) => `${k}=${textValue(v)}`);
  const head = [event['time'], levelName(level), `${who}:`, event['msg'] ?? ''].filter((x) => x !== undefined && x !== '');
  return [...head.map(String), ...fields].join(' ');
}

export interface OutputOptions {
  format: LogFormat;
  /** stdout is the journal: prefix each line with its priority (`<3>`). */
  journal: boolean;
}

/** One pino JSON line (with its newline) -> the line to write (with its newline). */
export function renderLine(jsonLine: string, opts: OutputOptions): string {
  const body = jsonLine.endsWith('\n') ? jsonLine.slice(0, -1) : jsonLine;
  let level = Number(LEVEL_RE.exec(body)?.[1] ?? 30);
  let out = body;
  if (opts.format === 'text') {
    try {
      const event = JSON.parse(body) as Record<string, unknown>;
      if (typeof event['level'] === 'number') level = event['level'];
      out = textLine(event);
    } catch {
      // Not pino's JSON (cannot happen for our own lines): write it as it came.
    }
  }
  // A message holding newlines would become several journal entries with the later ones at
  // the default priority: the text format keeps one event on one line.
  if (opts.format === 'text') out = out.replaceAll('\n', '\\n');
  return `${opts.journal ? `<${syslogPriority(level)}>` : ''}${out}\n`;
}

/**
 * True when fd 1 is the journal stream systemd handed us: JOURNAL_STREAM holds its
 * `device:inode`, which a redirected stdout no longer matches (sd_journal_stream_fd(3)).
 */
export function stdoutIsJournal(journalStream: string | undefined, stdout: { dev: number; ino: number } | undefined): boolean {
  if (!journalStream || !stdout) return false;
  return journalStream === `${stdout.dev}:${stdout.ino}`;
}
