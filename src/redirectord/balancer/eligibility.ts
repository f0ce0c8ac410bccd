import { isIP } from 'node:net';
import type { NodeStatus } from '../../coordination/node-status.js';

/**
 * The hard rule every listener placement and every DNS apex answer obeys, whatever
 * `--lb-policy` says (SPEC.md, "Load balancing policy"): a node is offered only when its
 * Icecast answered its last poll, it is not draining, its report is current, and it has an
 * address of the client's IP family. Policy filters and scorers only choose among these.
 */

/**
 * A report this much older than the newest report in the view is stale. Unchanged reports are
 * rewritten every 15 s, so a live radiod's report is never more than about 15 s behind its
 * peers'; three missed refreshes mean its poller is stuck. Staleness is measured against the
 * newest report rather than this process's clock: reportedAt comes from another machine's
 * clock, and while etcd is unreachable the whole view is frozen, which is no node's fault
 * (redirects and DNS keep serving the last view then).
 */
export const STALE_REPORT_MS = 45_000;

export type Ineligibility = 'icecast_down' | 'draining' | 'stale_report' | 'no_address_of_family';

/** The newest reportedAt among `nodes`, the reference staleness is measured against. */
export function newestReport(nodes: readonly NodeStatus[]): number {
  let newest = Number.NEGATIVE_INFINITY;
  for (const n of nodes) if (n.reportedAt > newest) newest = n.reportedAt;
  return newest;
}

/** Why `node` must not be offered, or undefined when it may be. */
export function ineligibility(node: NodeStatus, newest: number, family: 4 | 6): Ineligibility | undefined {
  if (!node.icecastOk) return 'icecast_down';
  if (node.draining === true) return 'draining';
  if (!(node.reportedAt >= newest - STALE_REPORT_MS)) return 'stale_report';
  if (!node.addresses.some((a) => isIP(a) === family)) return 'no_address_of_family';
  return undefined;
}

/** The nodes that may be offered to a client of `family`, in their original order. */
export function eligibleNodes<T extends NodeStatus>(nodes: readonly T[], family: 4 | 6): T[] {
  const newest = newestReport(nodes);
  return nodes.filter((n) => ineligibility(n, newest, family) === undefined);
}
