/**
 * What one liquidsoap run printed before its own log began. liquidsoap type-checks the script
 * before it logs anything with a timestamp; a script it rejects ends the run right there with
 * `At <file>, line N ...` and `Error N: ...` on its output. That text is the reason, and it is
 * the same every restart, so it is kept here instead of being logged line by line each time.
 * Pure: no I/O.
 */

/** Lines kept per run: a type error prints a handful; anything longer is cut. */
const MAX_LINES = 40;
const ERROR_RE = /^Error \d+: /;

export class RunOutput {
  private readonly lines: string[] = [];
  /** Set by the first timestamped log line: the script was accepted and the run began. */
  private logStarted = false;

  /** True when the line belongs to the preamble (kept); false once liquidsoap logs normally. */
  keep(line: string, timestamped: boolean): boolean {
    if (timestamped) this.logStarted = true;
    if (this.logStarted) return false;
    if (this.lines.length < MAX_LINES) this.lines.push(line);
    return true;
  }

  /** Lines kept so far, and forgets them. */
  drain(): string[] {
    return this.lines.splice(0);
  }

  /** liquidsoap's own words when it refused the script (the run never began), else undefined. */
  scriptRejection(exitCode: number | null): string | undefined {
    if (this.logStarted || exitCode === 0 || !this.lines.some((l) => ERROR_RE.test(l))) return undefined;
    return this.lines.map((l) => l.trim()).filter(Boolean).join(' ');
  }
}
