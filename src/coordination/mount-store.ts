import { isDeepStrictEqual } from 'node:util';
import type { Etcd3, ICompare, IRequestOp, ITxnRequest } from 'etcd3';
import { AutoradioError, ErrorCode } from '../common/errors.js';
import { classifyEtcdFailure, etcdFailureReason, isEtcdUnavailable } from './etcd-failure.js';
import { MOUNTS_PREFIX, mountKey } from './keys.js';
import {
  assertMountPath,
  mountProblems,
  mountReferenceProblems,
  mountsReferring,
  parseStoredMount,
  parseStoredMountAt,
  type Mount,
} from './mount.js';
import { parseBackup, type Backup } from './backup.js';

interface Versioned {
  mount: Mount;
  modRevision: string;
}

/** What a full read of the mounts found: valid mounts, and keys whose value is broken. */
export interface MountListing {
  mounts: Map<string, Versioned>;
  invalid: { key: string; problem: string; modRevision: string }[];
  /** etcd revision the listing was read at. */
  revision: string;
}

/** etcd refuses transactions of more than 128 operations by default. */
const MAX_TXN_OPS = 100;
/** Attempts of one write against concurrent writers before giving up. */
const WRITE_ATTEMPTS = 20;

/**
 * Sends one transaction to etcd. The store's only way to write, so that tests can make a write
 * whose answer is lost (applied by etcd, reported as a timeout) against a real etcd.
 */
export type TxnSender = (request: ITxnRequest) => Promise<{ succeeded: boolean }>;

/** A write was sent and etcd's answer did not come back: it may or may not have been applied. */
class OutcomeUnknown extends Error {
  constructor(override readonly cause: unknown) {
    super('etcd did not answer a write');
  }
}

/**
 * Reads and writes mounts. Every write is a transaction guarded by what it was validated
 * against: no mount key may have changed since the listing was read (a range comparison over
 * the whole mounts prefix), and the mounts it touches or refers to must still exist at the
 * revisions read (deletions do not show in a range comparison). So two admins editing at once
 * never overwrite each other, and no write can form a loop or a dangling reference that a
 * concurrent write would have made invalid.
 */
export class MountStore {
  private readonly sendTxn: TxnSender;

  constructor(
    private readonly client: Etcd3,
    sendTxn?: TxnSender,
  ) {
    this.sendTxn = sendTxn ?? ((request) => client.kv.txn(request));
  }

  async list(): Promise<MountListing> {
    const res = await this.client.getAll().prefix(MOUNTS_PREFIX).exec();
    const listing: MountListing = { mounts: new Map(), invalid: [], revision: res.header.revision };
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      try {
        const mount = parseStoredMountAt(key, kv.value.toString());
        listing.mounts.set(mount.path, { mount, modRevision: kv.mod_revision });
      } catch (err) {
        listing.invalid.push({ key, problem: (err as Error).message, modRevision: kv.mod_revision });
      }
    }
    return listing;
  }

  async get(path: string): Promise<Mount> {
    assertMountPath(path);
    const raw = await this.client.get(mountKey(path)).string();
    if (raw === null) throw new AutoradioError(ErrorCode.mountNotFound, `mount ${path} does not exist`);
    return parseStoredMount(raw);
  }

  async create(mount: Mount): Promise<Mount> {
    assertMountPath(mount.path);
    return this.retrying(`mount ${mount.path}`, async (listing) => {
      // The stored value is exactly ours (its password was generated for this call): an earlier
      // attempt committed and its answer was lost, or the client resent it after a timeout.
      if (isDeepStrictEqual(listing.mounts.get(mount.path)?.mount, mount)) return mount;
      if (listing.mounts.has(mount.path)) {
        throw new AutoradioError(ErrorCode.mountExists, `mount ${mount.path} already exists`);
      }
      if (listing.invalid.some((i) => i.key === mountKey(mount.path))) {
        throw new AutoradioError(
          ErrorCode.mountExists,
          `mount ${mount.path} exists but its stored value is invalid; delete it with delete-mount first`,
        );
      }
      this.validate(mount, listing);
      return (await this.commit(listing, referencesUnchanged(mount, listing), [putOp(mount)])) ? mount : undefined;
    });
  }

  /**
   * Applies `change` to the stored mount. On a concurrent edit the change is applied again to
   * the fresh value, so both edits take effect.
   */
  async edit(path: string, change: (current: Mount) => Mount): Promise<Mount> {
    assertMountPath(path);
    return this.retrying(`mount ${path}`, async (listing) => {
      const current = listing.mounts.get(path);
      if (!current) throw new AutoradioError(ErrorCode.mountNotFound, `mount ${path} does not exist`);
      const next = change(structuredClone(current.mount));
      if (next.path !== path) throw new AutoradioError(ErrorCode.invalidMount, 'a mount cannot be renamed');
      this.validate(next, listing);
      const guards = [unchangedSince(mountKey(path), current.modRevision), ...referencesUnchanged(next, listing)];
      return (await this.commit(listing, guards, [putOp(next)])) ? next : undefined;
    });
  }

  async delete(path: string): Promise<void> {
    assertMountPath(path);
    await this.retrying(`mount ${path}`, async (listing, afterUnknownWrite) => {
      const current = listing.mounts.get(path);
      // Our delete, sent before, was applied after all.
      if (!current && afterUnknownWrite) return true;
      if (!current) {
        // A key holding garbage can be deleted, so that the path can be created again.
        // Through commit like every write, so that a lost answer is looked for, not reported as
        // "nothing was changed".
        const invalid = listing.invalid.find((i) => i.key === mountKey(path));
        if (invalid) return (await this.commit(listing, [unchangedSince(invalid.key, invalid.modRevision)], [deleteOp(invalid.key)])) || undefined;
        throw new AutoradioError(ErrorCode.mountNotFound, `mount ${path} does not exist`);
      }
      const users = mountsReferring(path, [...listing.mounts.values()].map((v) => v.mount));
      if (users.length > 0) {
        throw new AutoradioError(
          ErrorCode.mountInUse,
          `mount ${path} is used by ${users.map((m) => m.path).join(', ')} (as fallback or transcoding source); change those first`,
        );
      }
      const deleted = await this.commit(listing, [unchangedSince(mountKey(path), current.modRevision)], [deleteOp(mountKey(path))]);
      return deleted || undefined;
    });
  }

  /**
   * Runs `attempt` against a fresh listing until it commits (returns a value) or throws. A
   * transaction that lost to a concurrent write returns undefined: the write is validated and
   * tried again on the new state, after a short random pause so racing admins spread out. A
   * write whose answer was lost is looked for in the next listing (`afterUnknownWrite`), and
   * when etcd cannot be read any more the error says the write is unconfirmed, never that
   * nothing changed.
   */
  private async retrying<T>(
    what: string,
    attempt: (listing: MountListing, afterUnknownWrite: boolean) => Promise<T | undefined>,
  ): Promise<T> {
    let unknown: OutcomeUnknown | undefined;
    for (let i = 0; i < WRITE_ATTEMPTS; i++) {
      try {
        const result = await attempt(await this.listAfter(what, unknown), unknown !== undefined);
        if (result !== undefined) return result;
      } catch (err) {
        // After a write with no answer, a later attempt refused by etcd says nothing of the
        // earlier one, which may have been applied (an edit's re-read may even have shown it).
        if (unknown && !(err instanceof OutcomeUnknown) && isEtcdUnavailable(err)) throw unconfirmed(what, err);
        if (!(err instanceof OutcomeUnknown)) throw err;
        unknown = err;
        continue;
      }
      await new Promise((r) => setTimeout(r, Math.random() * 20 * (i + 1)));
    }
    if (unknown) throw unconfirmed(what, unknown.cause);
    throw new AutoradioError(ErrorCode.concurrentEdit, `${what} keeps changing; nothing was written, try again`);
  }

  /** A listing; after a write with no answer, a failed read means that write is unconfirmed. */
  private async listAfter(what: string, unknown: OutcomeUnknown | undefined): Promise<MountListing> {
    try {
      return await this.list();
    } catch (err) {
      throw unknown ? unconfirmed(what, err) : err;
    }
  }

  async backup(): Promise<Backup> {
    const listing = await this.list();
    const mounts = [...listing.mounts.values()].map((v) => v.mount).sort((a, b) => a.path.localeCompare(b.path));
    return { version: 1, mounts };
  }

  /**
   * Replaces every mount with the backup's. The whole file is validated first; only then is
   * anything written. Above about a hundred mounts the writes span several transactions
   * (etcd's limit); if one fails, the error says exactly what the committed ones wrote, and
   * running the same restore again completes it.
   */
  async restore(input: unknown): Promise<RestoreResult> {
    const backup = parseBackup(input);
    const listing = await this.list();
    const wanted = new Set(backup.mounts.map((m) => m.path));
    const ops: RestoreOp[] = [
      ...backup.mounts.map((m) => ({ kind: 'written' as const, op: putOp(m) })),
      ...[...listing.mounts.keys()].filter((p) => !wanted.has(p)).map((p) => ({ kind: 'deleted' as const, op: deleteOp(mountKey(p)) })),
      ...listing.invalid.map((i) => ({ kind: 'deleted' as const, op: deleteOp(i.key) })),
    ];
    const done: RestoreResult = { written: 0, deleted: 0 };
    const chunks = Math.ceil(ops.length / MAX_TXN_OPS);
    for (let i = 0; i < ops.length; i += MAX_TXN_OPS) {
      const chunk = ops.slice(i, i + MAX_TXN_OPS);
      try {
        await this.sendTxn({ compare: [], success: chunk.map((o) => o.op), failure: [] });
      } catch (err) {
        throw restoreIncomplete(err, done, i / MAX_TXN_OPS, chunks);
      }
      for (const o of chunk) done[o.kind]++;
    }
    return done;
  }

  private validate(mount: Mount, listing: MountListing): void {
    const all = new Map([...listing.mounts].map(([p, v]) => [p, v.mount]));
    const problems = [...mountProblems(mount), ...mountReferenceProblems(mount, all)];
    if (problems.length > 0) throw new AutoradioError(ErrorCode.invalidMount, problems.join('; '));
  }

  /** Runs `ops` only if no mount changed since `listing` was read and every guard holds. */
  private async commit(listing: MountListing, guards: ICompare[], ops: IRequestOp[]): Promise<boolean> {
    const nothingChanged: ICompare = {
      key: Buffer.from(MOUNTS_PREFIX),
      range_end: prefixEnd(MOUNTS_PREFIX),
      target: 'Mod',
      result: 'Less',
      mod_revision: (BigInt(listing.revision) + 1n).toString(),
    };
    try {
      return (await this.sendTxn({ compare: [nothingChanged, ...guards], success: ops, failure: [] })).succeeded;
    } catch (err) {
      // Refused before sending (no connection, open circuit): not applied, and the caller says so.
      if (classifyEtcdFailure(err) === 'unanswered') throw new OutcomeUnknown(err);
      throw err;
    }
  }
}

/** What a restore wrote, in committed transactions only. */
export interface RestoreResult {
  written: number;
  deleted: number;
}

interface RestoreOp {
  kind: keyof RestoreResult;
  op: IRequestOp;
}

function restoreIncomplete(err: unknown, done: RestoreResult, failedChunk: number, chunks: number): unknown {
  const failure = classifyEtcdFailure(err);
  // The first transaction refused outright: nothing was written, the plain error says so.
  if (failedChunk === 0 && failure !== 'unanswered') return err;
  const maybe = failure === 'unanswered' ? ` (transaction ${failedChunk + 1} was sent but not confirmed: it may have been applied too)` : '';
  return new AutoradioError(
    ErrorCode.restoreIncomplete,
    `restore incomplete: etcd failed (${etcdFailureReason(err)}) after ${failedChunk} of ${chunks} transactions, ` +
      `which wrote ${done.written} mounts and removed ${done.deleted}${maybe}; run the same restore again to complete it`,
    { cause: err },
  );
}

function unconfirmed(what: string, cause: unknown): AutoradioError {
  return new AutoradioError(
    ErrorCode.writeUnconfirmed,
    `etcd did not confirm the write to ${what} and cannot be read now (${etcdFailureReason(cause)}); it may or may not have been applied: check with radioctl list-mounts`,
    { cause },
  );
}

function deleteOp(key: string): IRequestOp {
  return { request_delete_range: { key: Buffer.from(key) } };
}

function putOp(mount: Mount): IRequestOp {
  return { request_put: { key: Buffer.from(mountKey(mount.path)), value: Buffer.from(JSON.stringify(mount)) } };
}

/** The key still exists at exactly this modification revision (a deleted key has none). */
function unchangedSince(key: string, modRevision: string): ICompare {
  return { key: Buffer.from(key), target: 'Mod', result: 'Equal', mod_revision: modRevision };
}

function referencesUnchanged(mount: Mount, listing: MountListing): ICompare[] {
  const refs = new Set([mount.fallback, mount.transcoding?.source].filter((p): p is string => p !== undefined));
  return [...refs].flatMap((ref) => {
    const v = listing.mounts.get(ref);
    return v ? [unchangedSince(mountKey(ref), v.modRevision)] : [];
  });
}

/** The end of etcd's key range for a prefix: the prefix with its last byte incremented. */
function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  end[end.length - 1]! += 1;
  return end;
}
