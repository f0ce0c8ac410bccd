import type { Etcd3 } from 'etcd3';
import { AutoradioError, ErrorCode } from '../common/errors.js';
import { MOUNTS_PREFIX, mountKey, mountPathFromKey } from './keys.js';
import {
  assertMountPath,
  mountProblems,
  mountReferenceProblems,
  mountsReferring,
  parseStoredMount,
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
  invalid: { key: string; problem: string }[];
}

/** etcd refuses transactions of more than 128 operations by default. */
const MAX_TXN_OPS = 100;
const EDIT_RETRIES = 5;

/**
 * Reads and writes mounts. Every write is a transaction that compares the revisions it read
 * (the mount itself and the mounts it refers to), so two admins editing at once can never
 * silently overwrite each other, and nothing is written that was validated against stale data.
 */
export class MountStore {
  constructor(private readonly client: Etcd3) {}

  async list(): Promise<MountListing> {
    const res = await this.client.getAll().prefix(MOUNTS_PREFIX).exec();
    const listing: MountListing = { mounts: new Map(), invalid: [] };
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      try {
        const mount = parseStoredMount(kv.value.toString());
        if (mount.path !== mountPathFromKey(key)) throw new Error(`its path ${mount.path} does not match the key`);
        listing.mounts.set(mount.path, { mount, modRevision: kv.mod_revision });
      } catch (err) {
        listing.invalid.push({ key, problem: (err as Error).message });
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
    const listing = await this.list();
    if (listing.mounts.has(mount.path)) {
      throw new AutoradioError(ErrorCode.mountExists, `mount ${mount.path} already exists`);
    }
    this.validate(mount, listing);
    const txn = this.client.if(mountKey(mount.path), 'Create', '==', 0);
    this.compareReferences(txn, mount, listing);
    const res = await txn.then(this.client.put(mountKey(mount.path)).value(JSON.stringify(mount))).commit();
    if (!res.succeeded) {
      throw new AutoradioError(
        ErrorCode.concurrentEdit,
        `mount ${mount.path} or a mount it refers to was changed meanwhile; nothing was written, try again`,
      );
    }
    return mount;
  }

  /**
   * Applies `change` to the stored mount. On a concurrent edit the change is applied again to
   * the fresh value, so both edits take effect.
   */
  async edit(path: string, change: (current: Mount) => Mount): Promise<Mount> {
    assertMountPath(path);
    for (let attempt = 0; attempt < EDIT_RETRIES; attempt++) {
      const listing = await this.list();
      const current = listing.mounts.get(path);
      if (!current) throw new AutoradioError(ErrorCode.mountNotFound, `mount ${path} does not exist`);
      const next = change(structuredClone(current.mount));
      if (next.path !== path) throw new AutoradioError(ErrorCode.invalidMount, 'a mount cannot be renamed');
      this.validate(next, listing);
      const txn = this.client.if(mountKey(path), 'Mod', '==', current.modRevision);
      this.compareReferences(txn, next, listing);
      const res = await txn.then(this.client.put(mountKey(path)).value(JSON.stringify(next))).commit();
      if (res.succeeded) return next;
    }
    throw new AutoradioError(ErrorCode.concurrentEdit, `mount ${path} keeps changing; nothing was written, try again`);
  }

  async delete(path: string): Promise<void> {
    assertMountPath(path);
    const listing = await this.list();
    const current = listing.mounts.get(path);
    if (!current) throw new AutoradioError(ErrorCode.mountNotFound, `mount ${path} does not exist`);
    const users = mountsReferring(path, [...listing.mounts.values()].map((v) => v.mount));
    if (users.length > 0) {
      throw new AutoradioError(
        ErrorCode.mountInUse,
        `mount ${path} is used by ${users.map((m) => m.path).join(', ')} (as fallback or transcoding source); change those first`,
      );
    }
    const res = await this.client
      .if(mountKey(path), 'Mod', '==', current.modRevision)
      .then(this.client.delete().key(mountKey(path)))
      .commit();
    if (!res.succeeded) {
      throw new AutoradioError(ErrorCode.concurrentEdit, `mount ${path} was changed meanwhile; nothing was deleted, try again`);
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
   * (etcd's limit); running the same restore again completes an interrupted one.
   */
  async restore(input: unknown): Promise<{ written: number; deleted: number }> {
    const backup = parseBackup(input);
    const listing = await this.list();
    const wanted = new Set(backup.mounts.map((m) => m.path));
    const ops = [
      ...backup.mounts.map((m) => this.client.put(mountKey(m.path)).value(JSON.stringify(m))),
      ...[...listing.mounts.keys()].filter((p) => !wanted.has(p)).map((p) => this.client.delete().key(mountKey(p))),
      ...listing.invalid.map((i) => this.client.delete().key(i.key)),
    ];
    for (let i = 0; i < ops.length; i += MAX_TXN_OPS) {
      // The client builds transactions only from a comparison; this one always holds.
      await this.client.if(MOUNTS_PREFIX, 'Version', '>', -1).then(...ops.slice(i, i + MAX_TXN_OPS)).commit();
    }
    return { written: backup.mounts.length, deleted: ops.length - backup.mounts.length };
  }

  private validate(mount: Mount, listing: MountListing): void {
    const all = new Map([...listing.mounts].map(([p, v]) => [p, v.mount]));
    const problems = [...mountProblems(mount), ...mountReferenceProblems(mount, all)];
    if (problems.length > 0) throw new AutoradioError(ErrorCode.invalidMount, problems.join('; '));
  }

  private compareReferences(txn: ReturnType<Etcd3['if']>, mount: Mount, listing: MountListing): void {
    const refs = [mount.fallback, mount.transcoding?.source].filter((p): p is string => p !== undefined);
    for (const ref of new Set(refs)) {
      const v = listing.mounts.get(ref);
      if (v) txn.and(mountKey(ref), 'Mod', '==', v.modRevision);
    }
  }
}
