/**
 * What to do with a chunk for a listener whose socket may be backed up. Pure.
 *
 * A listener that cannot keep up is never waited for (the others would be slowed) and never
 * buffered without bound: while more than `skipAboveBytes` wait in its socket, chunks are
 * skipped (each chunk starts on a frame boundary, so it resumes on one), and a listener that
 * has skipped continuously for `dropAfterMs` is dropped.
 */
export interface SlowPolicy {
  skipAboveBytes: number;
  dropAfterMs: number;
}

export const DEFAULT_SLOW_POLICY: SlowPolicy = { skipAboveBytes: 131_072, dropAfterMs: 15_000 };

export type ChunkVerdict = { kind: 'write' } | { kind: 'skip'; since: number } | { kind: 'drop' };

/** `skippingSince`: when the current run of skipped chunks began, undefined when none. */
export function chunkVerdict(policy: SlowPolicy, queuedBytes: number, skippingSince: number | undefined, now: number): ChunkVerdict {
  if (queuedBytes <= policy.skipAboveBytes) return { kind: 'write' };
  const since = skippingSince ?? now;
  if (now - since >= policy.dropAfterMs) return { kind: 'drop' };
  return { kind: 'skip', since };
}
