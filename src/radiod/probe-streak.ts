/**
 * Consecutive failed probes of one leader, told apart by its candidate key (a new leader starts
 * a new streak). One failure is noise (a lost SYN on a lossy link); `failuresToSuspect` in a row
 * is a dead or cut-off leader. Pure.
 */
export type ProbeVerdict = 'healthy' | 'doubtful' | 'dead';

export class ProbeStreak {
  private key: string | undefined;
  private failures = 0;

  constructor(private readonly failuresToSuspect: number) {}

  /** Whom the streak is about; switching leaders starts over. Returns true if it changed. */
  follow(key: string | undefined): boolean {
    if (key === this.key) return false;
    this.key = key;
    this.failures = 0;
    return true;
  }

  record(ok: boolean): ProbeVerdict {
    this.failures = ok ? 0 : this.failures + 1;
    if (this.failures === 0) return 'healthy';
    return this.failures >= this.failuresToSuspect ? 'dead' : 'doubtful';
  }
}
