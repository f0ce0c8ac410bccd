/**
 * gRPC messages etcd received, per method, from its Prometheus endpoint: one per unary call
 * (Range, Txn, ...) and one per stream message (each lease keepalive, each watch request).
 * The difference of two readings over a window is the load clients put on etcd.
 */
export async function etcdRequestsByMethod(etcdUrl: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${etcdUrl}/metrics`)).text();
  const counts = new Map<string, number>();
  for (const m of text.matchAll(/^grpc_server_msg_received_total\{([^}]*)\} (\S+)$/gm)) {
    const method = /grpc_method="([^"]+)"/.exec(m[1]!)?.[1] ?? '?';
    counts.set(method, (counts.get(method) ?? 0) + Number(m[2]));
  }
  return counts;
}

/** Requests per second per method between two readings taken `seconds` apart (zero rows left out). */
export function requestRates(before: Map<string, number>, after: Map<string, number>, seconds: number): Record<string, number> {
  const rates: Record<string, number> = {};
  for (const [method, n] of after) {
    const delta = n - (before.get(method) ?? 0);
    if (delta > 0) rates[method] = Math.round((delta / seconds) * 100) / 100;
  }
  return rates;
}
