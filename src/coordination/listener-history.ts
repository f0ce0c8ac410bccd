import { Ajv } from 'ajv';

/**
 * Listeners over the last 24 h at one-minute resolution, per mount and in total, kept in one
 * etcd key so that it survives the restart of any daemon. Pure.
 *
 * Size is bounded: HISTORY_MINUTES samples per series and at most HISTORY_MAX_MOUNTS mounts
 * (the busiest), so the value stays under about 100 KB whatever the cluster holds. One writer
 * (the master's radiod) rewrites it once a minute: one small write per minute per cluster.
 */
export interface ListenerHistory {
  v: 1;
  /** The minute (ms since the epoch, a multiple of 60,000) of the last sample. */
  end: number;
  /** Oldest first; null where no sample was taken (no master, etcd down). */
  total: (number | null)[];
  mounts: Record<string, (number | null)[]>;
}

export const HISTORY_MINUTES = 1440;
export const HISTORY_MAX_MOUNTS = 20;
export const MINUTE_MS = 60_000;

const series = { type: 'array', maxItems: HISTORY_MINUTES, items: { type: ['integer', 'null'], minimum: 0 } } as const;
const validate = new Ajv().compile<ListenerHistory>({
  type: 'object',
  required: ['v', 'end', 'total', 'mounts'],
  properties: {
    v: { const: 1 },
    end: { type: 'integer', minimum: 0 },
    total: series,
    mounts: { type: 'object', maxProperties: HISTORY_MAX_MOUNTS, additionalProperties: series },
  },
});

/** The stored value, or undefined when it is missing or not a history this version reads. */
export function parseListenerHistory(json: string): ListenerHistory | undefined {
  try {
    const value: unknown = JSON.parse(json);
    return validate(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** `s` moved forward by `minutes` (null-filled), keeping the last HISTORY_MINUTES samples. */
function shifted(s: readonly (number | null)[], length: number, minutes: number): (number | null)[] {
  const padded = [...Array<null>(Math.max(0, length - s.length)).fill(null), ...s];
  const moved = [...padded, ...Array<null>(Math.min(minutes, HISTORY_MINUTES)).fill(null)];
  return moved.slice(-HISTORY_MINUTES);
}

function peak(s: readonly (number | null)[]): number {
  return s.reduce<number>((m, v) => Math.max(m, v ?? 0), 0);
}

/**
 * The history with the sample for `minute` (listeners per mount now). A sample for the same
 * minute replaces the last one; minutes without a sample stay null. Mounts that had no listener
 * in 24 h are dropped; beyond HISTORY_MAX_MOUNTS the busiest are kept.
 */
export function appendSample(
  previous: ListenerHistory | undefined,
  minute: number,
  perMount: Readonly<Record<string, number>>,
): ListenerHistory {
  const at = Math.floor(minute / MINUTE_MS) * MINUTE_MS;
  // A writer whose clock is behind the last one's adds nothing rather than erase the day.
  if (previous && previous.end > at) return previous;
  const base = previous;
  const step = base ? (at - base.end) / MINUTE_MS : 1;
  const length = base ? base.total.length : 0;
  const advance = (s: readonly (number | null)[]): (number | null)[] => (step === 0 ? s.slice(0, -1) : shifted(s, length, step - 1));
  const total = [...advance(base?.total ?? []), Object.values(perMount).reduce((a, b) => a + b, 0)];
  const candidates = new Map<string, (number | null)[]>();
  for (const [path, s] of Object.entries(base?.mounts ?? {})) candidates.set(path, [...advance(s), perMount[path] ?? 0]);
  for (const [path, n] of Object.entries(perMount)) {
    if (!candidates.has(path)) candidates.set(path, [...Array<null>(total.length - 1).fill(null), n]);
  }
  const kept = [...candidates.entries()]
    .filter(([, s]) => peak(s) > 0)
    .sort((a, b) => peak(b[1]) - peak(a[1]) || a[0].localeCompare(b[0]))
    .slice(0, HISTORY_MAX_MOUNTS)
    .sort((a, b) => a[0].localeCompare(b[0]));
  return { v: 1, end: at, total: total.slice(-HISTORY_MINUTES), mounts: Object.fromEntries(kept.map(([p, s]) => [p, s.slice(-HISTORY_MINUTES)])) };
}
