import { electionOfKey } from './keys.js';

/** One candidate key change, as the election watch (or the initial read) delivers it. Pure data. */
export interface CandidateChange {
  type: 'put' | 'delete';
  key: string;
  createRevision: string;
}

/**
 * Every election's candidates, folded from key changes under the election root. Pure: no etcd,
 * no timers. The leader of an election is its candidate with the lowest create revision.
 * Elections are told apart by their exact prefix (the key up to its last '/'), so keys of
 * /live/low can never count in /live's election, whatever layout wrote them.
 */
export class ElectionTable {
  private readonly elections = new Map<string, Map<string, bigint>>();
  private revisionSeen = 0n;

  /** The etcd revision the table reflects: every key created up to it is known. */
  get revision(): bigint {
    return this.revisionSeen;
  }

  /** Replaces everything with a full read taken at `revision`; returns the elections that may have changed. */
  reset(changes: readonly CandidateChange[], revision: bigint): Set<string> {
    const touched = new Set(this.elections.keys());
    this.elections.clear();
    for (const c of changes) this.applyOne(c, touched);
    this.revisionSeen = revision;
    return touched;
  }

  /** Applies one watch response; returns the elections it touched. */
  apply(changes: readonly CandidateChange[], revision: bigint): Set<string> {
    const touched = new Set<string>();
    for (const c of changes) this.applyOne(c, touched);
    if (revision > this.revisionSeen) this.revisionSeen = revision;
    return touched;
  }

  private applyOne(c: CandidateChange, touched: Set<string>): void {
    const parsed = electionOfKey(c.key);
    if (!parsed) return;
    touched.add(parsed.election);
    let candidates = this.elections.get(parsed.election);
    if (c.type === 'delete') {
      candidates?.delete(c.key);
      if (candidates?.size === 0) this.elections.delete(parsed.election);
      return;
    }
    if (!candidates) {
      candidates = new Map();
      this.elections.set(parsed.election, candidates);
    }
    // A put to an existing key (a new value) keeps its create revision, and so its place.
    candidates.set(c.key, BigInt(c.createRevision));
  }

  /** The leading key of an election, if it has candidates. */
  leader(election: string): string | undefined {
    let first: [string, bigint] | undefined;
    for (const entry of this.elections.get(election) ?? []) {
      if (!first || entry[1] < first[1]) first = entry;
    }
    return first?.[0];
  }

  has(key: string): boolean {
    const parsed = electionOfKey(key);
    return parsed !== undefined && (this.elections.get(parsed.election)?.has(key) ?? false);
  }

  candidateCount(election: string): number {
    return this.elections.get(election)?.size ?? 0;
  }
}
