import { isIP } from 'node:net';
import { Ajv } from 'ajv';
import { formatAjvErrors } from '../coordination/mount.js';

/**
 * `radioctl listeners`: every live node's front door is asked for the listeners it holds
 * (`/admin/listclients.json`, the cluster's Icecast admin credentials), and the answers are
 * merged into one list. Pure: the asking is in commands/listeners.ts.
 */
export interface NodeListener {
  node: string;
  mount: string;
  address: string;
  userAgent: string | null;
  referer: string | null;
  since: string;
  connectedSeconds: number;
  bytes: number;
}

/** Why a node gave no usable answer, stable for scripts reading `--json`. */
export type UnansweredCode = 'no_address' | 'unreachable' | 'timeout' | 'too_large' | 'http_status' | 'invalid_answer';

/** A node's missing answer: the stable code and a message for people. */
export interface NodeFailure {
  code: UnansweredCode;
  error: string;
}

export interface ClusterListeners {
  listeners: NodeListener[];
  /** Nodes that gave no usable answer: their listeners are missing from the list. */
  unanswered: ({ node: string } & NodeFailure)[];
}

interface ListclientsDocument {
  mounts: { mount: string; listeners: Omit<NodeListener, 'node' | 'mount'>[] }[];
}

// A listener chooses its user agent and referer (up to the front door's 16 KiB head): a length
// bound here would make one listener's long header hide every listener of its node. The answer's
// size is bounded as a whole where it is read.
const nullableString = { type: ['string', 'null'] };
// The first error only: a node (or whatever answers at its address) may send millions of bad
// entries, and collecting each took seconds and gigabytes for a warning nobody could read.
const validateDocument = new Ajv({ allErrors: false }).compile<ListclientsDocument>({
  type: 'object',
  required: ['mounts'],
  properties: {
    mounts: {
      type: 'array',
      items: {
        type: 'object',
        required: ['mount', 'listeners'],
        properties: {
          mount: { type: 'string', maxLength: 1024 },
          listeners: {
            type: 'array',
            items: {
              type: 'object',
              required: ['address', 'userAgent', 'referer', 'since', 'connectedSeconds', 'bytes'],
              properties: {
                address: { type: 'string', maxLength: 64 },
                userAgent: nullableString,
                referer: nullableString,
                since: { type: 'string', maxLength: 64 },
                connectedSeconds: { type: 'integer', minimum: 0 },
                bytes: { type: 'integer', minimum: 0 },
              },
            },
          },
        },
      },
    },
  },
});

/** A node's answer as listeners of that node, or why it cannot be read. */
export function parseNodeAnswer(node: string, body: string): NodeListener[] | NodeFailure {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return { code: 'invalid_answer', error: 'the answer is not JSON' };
  }
  if (!validateDocument(value)) return { code: 'invalid_answer', error: `unexpected answer: ${formatAjvErrors(validateDocument.errors)}` };
  return value.mounts.flatMap((m) =>
    m.listeners.map((l) => ({
      node,
      mount: m.mount,
      address: l.address,
      userAgent: l.userAgent,
      referer: l.referer,
      since: l.since,
      connectedSeconds: l.connectedSeconds,
      bytes: l.bytes,
    })),
  );
}

/** The path and query of the listclients radioctl asks for, the mount percent-encoded. */
export function listclientsPath(mount: string | undefined): string {
  return `/admin/listclients.json${mount === undefined ? '' : `?mount=${encodeURIComponent(mount)}`}`;
}

/**
 * Every node's answer (its body, or why there is none) as one list, oldest first per mount, and
 * the nodes whose listeners are missing. Appended one by one: spreading a node's listeners into
 * push() overflowed the stack from some 120,000 of them, which a node (or whatever answers at
 * its address) may claim, and failed the whole command.
 */
export function mergeNodeAnswers(asked: readonly { node: string; answer: string | NodeFailure }[]): ClusterListeners {
  const result: ClusterListeners = { listeners: [], unanswered: [] };
  for (const { node, answer } of asked) {
    const parsed = typeof answer === 'string' ? parseNodeAnswer(node, answer) : answer;
    if (!Array.isArray(parsed)) {
      result.unanswered.push({ node, code: parsed.code, error: parsed.error });
      continue;
    }
    for (const l of parsed) result.listeners.push(l);
  }
  result.listeners = sortListeners(result.listeners);
  return result;
}

/** The URL of a node's listclients: its first address, IPv6 in brackets. */
export function listclientsUrl(address: string, port: number, mount: string | undefined): string {
  const host = isIP(address) === 6 ? `[${address}]` : address;
  return `http://${host}:${port}${listclientsPath(mount)}`;
}

/** Oldest first within a mount, mounts by path, then nodes by name: the same list every time. */
export function sortListeners(listeners: NodeListener[]): NodeListener[] {
  return [...listeners].sort(
    (a, b) => cmp(a.mount, b.mount) || b.connectedSeconds - a.connectedSeconds || cmp(a.node, b.node) || cmp(a.address, b.address),
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
