import type { ClusterState, MasterInfo } from './cluster-state.js';
import {
  ACME_CERTIFICATE_KEY,
  ACME_CHALLENGE_PREFIX,
  DRAIN_PREFIX,
  FORGOTTEN_PREFIX,
  ICECAST_SECRETS_KEY,
  LISTENER_HISTORY_KEY,
  MASTER_ELECTION_PREFIX,
  MOUNTS_PREFIX,
  NODES_PREFIX,
  mountPathFromKey,
  nodeNameFromKey,
} from './keys.js';
import { parseStoredMountAt, type Mount } from './mount.js';
import { parseNodeStatus, type NodeStatus } from './node-status.js';
import { Ajv } from 'ajv';
import { parseListenerHistory, type ListenerHistory } from './listener-history.js';
import { parseIcecastSecrets } from './icecast-secrets.js';
import { isChallengeValue, parseStoredCertificate, type AcmeState, type StoredCertificate } from './acme.js';

/** One key change as the watch (or the initial read) delivers it. Pure data. */
export interface KeyChange {
  type: 'put' | 'delete';
  key: string;
  value: string;
  createRevision: string;
  modRevision: string;
}

const validateMasterInfo = new Ajv().compile<MasterInfo>({
  type: 'object',
  required: ['name', 'addresses', 'icecastPort'],
  properties: {
    name: { type: 'string', minLength: 1 },
    addresses: { type: 'array', items: { type: 'string' } },
    icecastPort: { type: 'integer', minimum: 1, maximum: 65535 },
  },
});

/**
 * Folds etcd key changes into a ClusterState. Pure: no etcd, no timers.
 *
 * A malformed value never erases what was known: an invalid mount keeps its last valid
 * version (and is reported), an invalid node status is ignored until a valid one arrives.
 */
export class ClusterStateBuilder {
  private mounts = new Map<string, Mount>();
  private nodes = new Map<string, NodeStatus>();
  private candidates = new Map<string, { createRevision: bigint; value: string }>();
  private drained = new Set<string>();
  private forgotten = new Set<string>();
  private history: ListenerHistory | undefined;
  private challenges = new Map<string, string>();
  private certificate: StoredCertificate | undefined;
  private icecastAdminPassword: string | undefined;
  private revision = '0';
  private membershipSerial = 1;
  /**
   * The mounts as last handed out, kept while no mount changes: a snapshot after a node's
   * status report carries the very same map, so readers can tell "mounts unchanged" by identity
   * (radiod re-renders icecast.xml only when its inputs changed).
   */
  private mountsSnapshot: ReadonlyMap<string, Mount> | undefined;

  constructor(private readonly onInvalid: (key: string, problem: string) => void) {}

  get currentRevision(): string {
    return this.revision;
  }

  /** Replaces everything with a full read taken at `revision`. */
  reset(changes: KeyChange[], revision: string): void {
    const previousNodes = new Set(this.nodes.keys());
    const previousMounts = this.mounts;
    this.mounts = new Map();
    this.mountsSnapshot = undefined;
    this.nodes = new Map();
    this.candidates = new Map();
    this.drained = new Set();
    this.forgotten = new Set();
    this.history = undefined;
    this.challenges = new Map();
    const previousCertificate = this.certificate;
    this.certificate = undefined;
    for (const c of changes) this.applyOne(c, previousMounts, previousCertificate);
    this.revision = revision;
    if (!sameKeys(previousNodes, this.nodes)) this.membershipSerial = nextSerial(this.membershipSerial, revision);
  }

  /** Applies the changes of one watch response; returns whether anything visible changed. */
  apply(changes: KeyChange[], revision: string): boolean {
    const beforeNames = new Set(this.nodes.keys());
    let changed = false;
    for (const c of changes) changed = this.applyOne(c, this.mounts, this.certificate) || changed;
    if (!sameKeys(beforeNames, this.nodes)) {
      this.membershipSerial = nextSerial(this.membershipSerial, revision);
    }
    this.revision = revision;
    return changed;
  }

  private applyOne(c: KeyChange, previousMounts: ReadonlyMap<string, Mount>, previousCertificate?: StoredCertificate): boolean {
    if (c.key.startsWith(ACME_CHALLENGE_PREFIX) || c.key === ACME_CERTIFICATE_KEY) return this.applyAcme(c, previousCertificate);
    if (c.key.startsWith(MOUNTS_PREFIX)) {
      const path = mountPathFromKey(c.key);
      if (c.type === 'delete') {
        if (!this.mounts.delete(path)) return false;
        this.mountsSnapshot = undefined;
        return true;
      }
      try {
        const mount = parseStoredMountAt(c.key, c.value);
        this.mounts.set(path, mount);
        this.mountsSnapshot = undefined;
      } catch (err) {
        this.onInvalid(c.key, (err as Error).message);
        const previous = previousMounts.get(path);
        if (previous) this.mounts.set(path, previous);
        return false;
      }
      return true;
    }
    if (c.key.startsWith(NODES_PREFIX)) {
      const name = nodeNameFromKey(c.key);
      if (c.type === 'delete') return this.nodes.delete(name);
      try {
        const status = parseNodeStatus(c.value);
        if (status.name !== name) throw new Error(`its name ${status.name} does not match the key`);
        this.nodes.set(name, status);
      } catch (err) {
        this.onInvalid(c.key, (err as Error).message);
        return false;
      }
      return true;
    }
    if (c.key === LISTENER_HISTORY_KEY) {
      // Only the status page reads it: a value this version cannot read is simply no chart.
      this.history = c.type === 'delete' ? undefined : parseListenerHistory(c.value);
      return true;
    }
    if (c.key === ICECAST_SECRETS_KEY) return this.applySecrets(c);
    if (c.key.startsWith(DRAIN_PREFIX)) return applyNameFlag(this.drained, c, DRAIN_PREFIX);
    if (c.key.startsWith(FORGOTTEN_PREFIX)) return applyNameFlag(this.forgotten, c, FORGOTTEN_PREFIX);
    if (c.key.startsWith(MASTER_ELECTION_PREFIX)) {
      if (c.type === 'delete') return this.candidates.delete(c.key);
      this.candidates.set(c.key, { createRevision: BigInt(c.createRevision), value: c.value });
      return true;
    }
    return false;
  }

  /**
   * A challenge value that cannot be one is never answered (the DNS serves only what ACME
   * needs); a certificate value that is not the schema keeps the last valid one, like a mount.
   */
  private applyAcme(c: KeyChange, previousCertificate: StoredCertificate | undefined): boolean {
    if (c.key !== ACME_CERTIFICATE_KEY) {
      if (c.type === 'delete') return this.challenges.delete(c.key);
      if (!isChallengeValue(c.value)) {
        this.onInvalid(c.key, 'not a DNS-01 value (43 base64url characters)');
        return this.challenges.delete(c.key);
      }
      this.challenges.set(c.key, c.value);
      return true;
    }
    if (c.type === 'delete') {
      this.certificate = undefined;
      return true;
    }
    try {
      this.certificate = parseStoredCertificate(c.value);
    } catch (err) {
      this.onInvalid(c.key, (err as Error).message);
      this.certificate = previousCertificate;
      return false;
    }
    return true;
  }

  /** Created once and never changed by the cluster; a value that is not valid keeps the last one. */
  private applySecrets(c: KeyChange): boolean {
    const before = this.icecastAdminPassword;
    if (c.type === 'delete') this.icecastAdminPassword = undefined;
    else {
      try {
        this.icecastAdminPassword = parseIcecastSecrets(c.value).adminPassword;
      } catch (err) {
        this.onInvalid(c.key, (err as Error).message);
      }
    }
    return this.icecastAdminPassword !== before;
  }

  private acme(): AcmeState | undefined {
    if (this.challenges.size === 0 && !this.certificate) return undefined;
    return {
      challenges: [...new Set(this.challenges.values())].sort(),
      ...(this.certificate ? { certificate: this.certificate } : {}),
    };
  }

  private firstCandidate(): { createRevision: bigint; value: string; key: string } | undefined {
    let first: { createRevision: bigint; value: string; key: string } | undefined;
    for (const [key, c] of this.candidates) {
      if (!first || c.createRevision < first.createRevision) first = { ...c, key };
    }
    return first;
  }

  private master(): MasterInfo | undefined {
    const first = this.firstCandidate();
    if (!first) return undefined;
    let info: unknown;
    try {
      info = JSON.parse(first.value);
    } catch {
      info = undefined;
    }
    if (!validateMasterInfo(info)) {
      this.onInvalid(first.key, 'master candidate value is not valid MasterInfo JSON');
      return undefined;
    }
    return info;
  }

  snapshot(connected: boolean): ClusterState {
    const nodes = new Map(this.nodes);
    // The drain key decides, not the node's report: a drain takes effect with one watch event,
    // on nodes whose radiod is older than drains or busy restarting.
    for (const name of this.drained) {
      const status = nodes.get(name);
      if (status && status.draining !== true) nodes.set(name, { ...status, draining: true });
    }
    return {
      mounts: (this.mountsSnapshot ??= new Map(this.mounts)),
      nodes,
      drained: new Set(this.drained),
      forgotten: new Set(this.forgotten),
      ...(this.history ? { history: this.history } : {}),
      ...acmePart(this.acme()),
      ...(this.icecastAdminPassword ? { icecastAdminPassword: this.icecastAdminPassword } : {}),
      master: this.master(),
      ...(this.candidates.size > 0 ? { masterKey: this.firstCandidate()!.key } : {}),
      revision: this.revision,
      connected,
      membershipSerial: this.membershipSerial,
    };
  }
}

function acmePart(acme: AcmeState | undefined): { acme?: AcmeState } {
  return acme ? { acme } : {};
}

function sameKeys(a: ReadonlySet<string>, b: ReadonlyMap<string, unknown>): boolean {
  if (a.size !== b.size) return false;
  for (const k of a) if (!b.has(k)) return false;
  return true;
}

/**
 * The SOA serial after a membership change at `revision`: revision mod 2^32 while that moves
 * forward (RFC 1982 serial arithmetic), else one past the previous serial. etcd revisions only
 * grow, except when etcd is replaced by an empty one at the same address: a serial that went
 * back with them would make secondaries keep their old copy of the zone.
 */
function nextSerial(previous: number, revision: string): number {
  const fromRevision = Number(BigInt(revision) % 4294967296n);
  const ahead = (fromRevision - previous + 4294967296) % 4294967296;
  const next = ahead > 0 && ahead < 2147483648 ? fromRevision : (previous + 1) % 4294967296;
  return next === 0 ? 1 : next;
}

/**
 * A per-node flag whose key alone is the flag (its value, who set it and when, is for people).
 * Returns whether the set changed.
 */
function applyNameFlag(names: Set<string>, c: KeyChange, prefix: string): boolean {
  const name = c.key.slice(prefix.length);
  if (c.type === 'delete') return names.delete(name);
  if (names.has(name)) return false;
  names.add(name);
  return true;
}
