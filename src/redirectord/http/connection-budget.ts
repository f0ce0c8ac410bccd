/**
 * What the front door's open connections may cost, per client address and in all. Pure
 * bookkeeping over opaque connection handles; the front door acts on its verdicts.
 *
 * Streaming connections (listeners, sources) cost what they are for and are never limited per
 * address: hundreds of phones can share one carrier-grade-NAT IPv4 address. What costs without
 * streaming is limited per address (IPv6: per /64, see client-address.ts) and in all:
 *
 * | class     | what                                                   | per address | pending cap | total cap |
 * | --------- | ------------------------------------------------------ | ----------- | ----------- | --------- |
 * | head      | a new connection whose request head is still arriving  | yes         | yes         | yes       |
 * | kept      | kept alive after an answer: idle, or its answer unread | yes         | yes         | yes       |
 * | http      | handed to the HTTP application (node:http times it out)| yes         | no          | yes       |
 * | streaming | a listener stream or a source                          | no          | no          | yes       |
 * | refused   | being answered 503 and closed                          | no          | no          | yes       |
 *
 * A newcomer over its address's limit first evicts that address's oldest kept-alive connection
 * (an idle keep-alive may be closed at any time; its client just reconnects); with none, it is
 * refused. When the pending cap (head + kept) is full, the oldest kept-alive, else the oldest
 * head, makes room: a slow-header flood then only costs its own sockets while real clients,
 * who send their head within a round trip, still get in. Over the total cap (descriptors),
 * newcomers are refused.
 */

export type CostClass = 'head' | 'kept' | 'http' | 'streaming' | 'refused';

export interface BudgetLimits {
  /** head + kept + http connections per address. */
  perAddress: number;
  /** head + kept connections, all addresses together. */
  pending: number;
  /** Every open connection. */
  total: number;
}

export type Admission<C> =
  | { kind: 'admitted'; evicted: C[] }
  | { kind: 'refused'; reason: 'per_address' | 'total' };

interface Entry {
  key: string;
  cls: CostClass;
}

export class ConnectionBudget<C> {
  private readonly entries = new Map<C, Entry>();
  /** Oldest first (Sets keep insertion order). */
  private readonly heads = new Set<C>();
  private readonly kept = new Set<C>();
  private readonly keptByKey = new Map<string, Set<C>>();
  private readonly limitedByKey = new Map<string, number>();

  constructor(private readonly limits: BudgetLimits) {}

  /**
   * A new connection from address `key`. Admitted, it is a `head`; refused, it is counted as
   * `refused` (in the total only) until released. Evicted connections are released here: the
   * caller closes them.
   */
  admit(conn: C, key: string): Admission<C> {
    if (this.entries.size >= this.limits.total) {
      this.add(conn, key, 'refused');
      return { kind: 'refused', reason: 'total' };
    }
    const evicted: C[] = [];
    if ((this.limitedByKey.get(key) ?? 0) >= this.limits.perAddress) {
      const idle = oldest(this.keptByKey.get(key));
      if (idle === undefined) {
        this.add(conn, key, 'refused');
        return { kind: 'refused', reason: 'per_address' };
      }
      this.release(idle);
      evicted.push(idle);
    }
    if (this.heads.size + this.kept.size >= this.limits.pending) {
      const victim = oldest(this.kept) ?? oldest(this.heads);
      if (victim !== undefined) {
        this.release(victim);
        evicted.push(victim);
      }
    }
    this.add(conn, key, 'head');
    return { kind: 'admitted', evicted };
  }

  /** The connection moved to another class (re-entering `kept` makes it the youngest). */
  reclassify(conn: C, cls: CostClass): void {
    const e = this.entries.get(conn);
    if (!e || e.cls === cls) return;
    this.release(conn);
    this.add(conn, e.key, cls);
  }

  /** The connection is gone; releasing twice is harmless. */
  release(conn: C): void {
    const e = this.entries.get(conn);
    if (!e) return;
    this.entries.delete(conn);
    this.heads.delete(conn);
    this.kept.delete(conn);
    const byKey = this.keptByKey.get(e.key);
    byKey?.delete(conn);
    if (byKey?.size === 0) this.keptByKey.delete(e.key);
    if (isLimited(e.cls)) {
      const n = (this.limitedByKey.get(e.key) ?? 1) - 1;
      if (n <= 0) this.limitedByKey.delete(e.key);
      else this.limitedByKey.set(e.key, n);
    }
  }

  classOf(conn: C): CostClass | undefined {
    return this.entries.get(conn)?.cls;
  }

  /** Connections of a class that the pending cap covers, oldest first. */
  pendingConnections(): C[] {
    return [...this.kept, ...this.heads];
  }

  counts(): { total: number; heads: number; kept: number; addresses: number } {
    return { total: this.entries.size, heads: this.heads.size, kept: this.kept.size, addresses: this.limitedByKey.size };
  }

  /** head + kept + http connections of address `key`. */
  limitedAt(key: string): number {
    return this.limitedByKey.get(key) ?? 0;
  }

  private add(conn: C, key: string, cls: CostClass): void {
    this.entries.set(conn, { key, cls });
    if (cls === 'head') this.heads.add(conn);
    if (cls === 'kept') {
      this.kept.add(conn);
      let byKey = this.keptByKey.get(key);
      if (!byKey) this.keptByKey.set(key, (byKey = new Set()));
      byKey.add(conn);
    }
    if (isLimited(cls)) this.limitedByKey.set(key, (this.limitedByKey.get(key) ?? 0) + 1);
  }
}

function isLimited(cls: CostClass): boolean {
  return cls === 'head' || cls === 'kept' || cls === 'http';
}

function oldest<C>(set: Set<C> | undefined): C | undefined {
  if (!set) return undefined;
  for (const c of set) return c;
  return undefined;
}
