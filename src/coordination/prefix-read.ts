import type { Etcd3, IKeyValue } from 'etcd3';
import { Range } from 'etcd3';

/**
 * Keys per range request. etcd refuses values over --max-request-bytes (1.5 MiB by default),
 * so one page is at most 64 × 1.5 MiB = 96 MiB: under the client's receive limit
 * (ETCD_MAX_RECEIVE_BYTES) whatever is stored, while a whole cluster (1,000 mounts and 120
 * nodes of 34 KB each is over 4 MB) fits in a few pages that each finish well within the call
 * deadline.
 */
export const PAGE_KEYS = 64;

export interface PrefixSnapshot {
  kvs: IKeyValue[];
  /** The store revision every page was read at. */
  revision: string;
}

/**
 * Every key under `prefix`, read page by page at one revision (the first page's), so the
 * result is the consistent snapshot a single range would have given. A compaction past that
 * revision between two pages fails the read; the caller starts over.
 */
export async function readPrefix(client: Etcd3, prefix: string, pageKeys = PAGE_KEYS): Promise<PrefixSnapshot> {
  const end = Range.prefix(prefix).end;
  const kvs: IKeyValue[] = [];
  let start: Buffer = Buffer.from(prefix);
  let revision: string | undefined;
  for (;;) {
    let request = client.getAll().inRange(new Range(start, end)).limit(pageKeys);
    if (revision !== undefined) request = request.revision(revision);
    const res = await request.exec();
    revision ??= res.header.revision;
    kvs.push(...res.kvs);
    const last = res.kvs[res.kvs.length - 1];
    if (!res.more || !last) return { kvs, revision };
    // The smallest key after `last`.
    start = Buffer.concat([last.key, Buffer.from([0])]);
  }
}
