import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GRPCDeadlineExceededError, GRPCUnavailableError } from 'etcd3';
import type { Etcd3 } from '../../src/coordination/client.js';
import { ROOT, mountKey } from '../../src/coordination/keys.js';
import { MountStore, type TxnSender } from '../../src/coordination/mount-store.js';
import { parseStoredMount, type Mount } from '../../src/coordination/mount.js';
import { AutoradioError, ErrorCode } from '../../src/common/errors.js';
import { describeFailure } from '../../src/radioctl/failure.js';
import { etcdPerFile, type TestEtcd } from '../support/etcd.js';

// Writes whose answer is lost, against a real etcd, on the paths the first lost-answer tests
// (radioctl.test.ts) do not take: a later attempt refused outright, and the delete of a key
// holding an invalid value.

let etcd: TestEtcd;
let client: Etcd3;

etcdPerFile((e, c) => {
  etcd = e;
  client = c;
});

const lostAnswer = () => new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded');
const refused = () => new GRPCUnavailableError('14 UNAVAILABLE: No connection established');

async function stored(path: string): Promise<Mount | undefined> {
  const raw = await client.get(mountKey(path)).string();
  return raw === null ? undefined : parseStoredMount(raw);
}

test('an edit applied with its answer lost, then refused on the retry, is unconfirmed, not "nothing was changed"', async () => {
  await client.delete().prefix(ROOT);
  const before: Mount = { path: '/edited.mp3', username: 'source', password: 'generated-password-1' };
  await new MountStore(client).create(before);
  let calls = 0;
  const send: TxnSender = async (request) => {
    if (++calls === 1) {
      await client.kv.txn(request);
      throw lostAnswer();
    }
    throw refused();
  };
  let n = 0;
  const newPassword = () => `reset-password-${++n}`;
  const failure = await new MountStore(client, send).edit('/edited.mp3', (m) => ({ ...m, password: newPassword() })).then(
    () => assert.fail('the edit cannot have been confirmed'),
    (err: unknown) => describeFailure(err, { etcdUrls: [etcd.url] }),
  );
  // The first attempt did change the password: the store saw it in the re-read.
  assert.equal((await stored('/edited.mp3'))?.password, 'reset-password-1');
  assert.equal(failure.code, ErrorCode.writeUnconfirmed, failure.message);
  assert.doesNotMatch(failure.message, /nothing was changed/);
});

test('deleting a key that holds an invalid value, its answer lost, succeeds', async () => {
  await client.delete().prefix(ROOT);
  await client.put(mountKey('/broken.mp3')).value('{not json');
  // Both ways the store could send the delete lose its answer after etcd applied it.
  const losing: Etcd3 = Object.create(client, {
    delete: {
      value: () => ({
        key: (key: string) => ({
          exec: async () => {
            await client.delete().key(key).exec();
            throw lostAnswer();
          },
        }),
      }),
    },
  }) as Etcd3;
  let calls = 0;
  const send: TxnSender = async (request) => {
    const res = await client.kv.txn(request);
    if (++calls === 1) throw lostAnswer();
    return res;
  };
  await new MountStore(losing, send).delete('/broken.mp3');
  assert.equal(await client.get(mountKey('/broken.mp3')).string(), null);
  await assert.rejects(new MountStore(client).delete('/broken.mp3'), (err) => err instanceof AutoradioError && err.code === ErrorCode.mountNotFound);
});

test('a password reset whose answer was lost returns the password etcd holds', async () => {
  await client.delete().prefix(ROOT);
  await new MountStore(client).create({ path: '/reset.mp3', username: 'source', password: 'generated-password-1' });
  let calls = 0;
  const send: TxnSender = async (request) => {
    const res = await client.kv.txn(request);
    if (++calls === 1) throw lostAnswer();
    return res;
  };
  let n = 0;
  const edited = await new MountStore(client, send).edit('/reset.mp3', (m) => ({ ...m, password: `reset-password-${++n}` }));
  assert.equal(edited.password, (await stored('/reset.mp3'))?.password);
  assert.notEqual(edited.password, 'generated-password-1');
});
