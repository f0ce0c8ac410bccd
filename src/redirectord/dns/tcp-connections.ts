import { clientKey } from '../../common/client-key.js';

/**
 * Who may hold a DNS-over-TCP connection (RFC 7766, section 6.2.3): at most `maxPerClient`
 * per client (IPv4 address, IPv6 /64), at most `maxTotal` in all. A full table does not
 * refuse the newcomer, which would let whoever fills it first lock every resolver out: it
 * closes its idlest connection instead. Pure bookkeeping; server.ts closes what it is told.
 */
export interface TcpConnectionLimits {
  maxTotal: number;
  maxPerClient: number;
}

export type Admission<C> = { kind: 'admitted'; evict: C[] } | { kind: 'refused'; reason: 'per_client_limit' };

interface Entry {
  client: string;
  lastActive: number;
}

export class TcpConnectionTable<C> {
  private readonly entries = new Map<C, Entry>();
  private readonly perClient = new Map<string, number>();

  constructor(private readonly limits: TcpConnectionLimits) {}

  get size(): number {
    return this.entries.size;
  }

  /** Admits `conn` from `address` at `now`, naming the connections to close to make room. */
  admit(conn: C, address: string | undefined, now: number): Admission<C> {
    const client = clientKey(address);
    if ((this.perClient.get(client) ?? 0) >= this.limits.maxPerClient) return { kind: 'refused', reason: 'per_client_limit' };
    const evict: C[] = [];
    while (this.entries.size >= this.limits.maxTotal) {
      const idlest = this.idlest();
      if (idlest === undefined) break;
      this.remove(idlest);
      evict.push(idlest);
    }
    this.entries.set(conn, { client, lastActive: now });
    this.perClient.set(client, (this.perClient.get(client) ?? 0) + 1);
    return { kind: 'admitted', evict };
  }

  /** The connection did something useful (a query arrived or an answer was flushed). */
  touch(conn: C, now: number): void {
    const e = this.entries.get(conn);
    if (e !== undefined) e.lastActive = now;
  }

  remove(conn: C): void {
    const e = this.entries.get(conn);
    if (e === undefined) return;
    this.entries.delete(conn);
    const left = (this.perClient.get(e.client) ?? 1) - 1;
    if (left > 0) this.perClient.set(e.client, left);
    else this.perClient.delete(e.client);
  }

  private idlest(): C | undefined {
    let found: C | undefined;
    let oldest = Number.POSITIVE_INFINITY;
    for (const [conn, e] of this.entries) {
      if (e.lastActive < oldest) {
        oldest = e.lastActive;
        found = conn;
      }
    }
    return found;
  }
}
