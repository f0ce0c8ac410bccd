import type { IcecastMountStats } from './stats.js';

/**
 * Outbound kbit/s from Icecast's per-mount `total_bytes_sent` counters. Icecast refreshes
 * those counters only every few seconds, so the rate is taken over a window of samples rather
 * than between two consecutive polls (which would read 0, then a burst). A counter that goes
 * down means the mount's source restarted: its bytes since then count as sent in the window.
 */
export class BandwidthMeter {
  private samples: { at: number; total: number }[] = [];
  private lastByMount = new Map<string, number>();
  private cumulative = 0;

  constructor(private readonly windowMs = 10_000) {}

  /** Adds one poll's counters (taken at `now` ms) and returns the current rate in kbit/s. */
  sample(now: number, mounts: readonly IcecastMountStats[]): number {
    const seen = new Map<string, number>();
    for (const m of mounts) {
      if (m.totalBytesSent === undefined) continue;
      const prev = this.lastByMount.get(m.mount);
      if (prev !== undefined) this.cumulative += m.totalBytesSent >= prev ? m.totalBytesSent - prev : m.totalBytesSent;
      seen.set(m.mount, m.totalBytesSent);
    }
    this.lastByMount = seen;
    this.samples.push({ at: now, total: this.cumulative });
    while (this.samples.length > 2 && now - this.samples[1]!.at >= this.windowMs) this.samples.shift();
    return this.rate();
  }

  /** Forgets everything, e.g. after Icecast restarted. */
  reset(): void {
    this.samples = [];
    this.lastByMount.clear();
    this.cumulative = 0;
  }

  private rate(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.at <= first.at) return 0;
    const kbps = ((last.total - first.total) * 8) / (last.at - first.at);
    return Math.round(kbps * 10) / 10;
  }
}
