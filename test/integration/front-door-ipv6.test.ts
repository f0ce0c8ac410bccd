import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createNamespace, deleteNamespace, netnsRun, runOk } from '../support/netns.js';

/**
 * One subscriber's /64 is one address for the front door's limits. Real sockets from many
 * addresses of one /64, in a network namespace of the test's own (its loopback holds them).
 */

test('connections from many addresses of one /64 share one per-address limit; another /64 has its own', async () => {
  const ns = `fd64-${process.pid}`;
  await createNamespace(ns);
  try {
    const server = '2001:db8:0:1::1';
    const clients = Array.from({ length: 20 }, (_, i) => `2001:db8:0:1:${(i + 2).toString(16)}::${(i * 7 + 3).toString(16)}`);
    const other = '2001:db8:0:2::1';
    for (const a of [server, ...clients, other]) await runOk(['ip', '-n', ns, 'addr', 'add', `${a}/64`, 'dev', 'lo', 'nodad']);
    const child = new URL('./front-door-ipv6-child.ts', import.meta.url).pathname;
    const r = await netnsRun(ns, [process.execPath, '--import', 'tsx', child, server, '4', clients.join(','), other], { timeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse(r.stdout) as { pending: number; refused: number; pendingWithOther: number; perAddressRejections: number };
    // 20 addresses, limit 4: counted one by one, none would have been refused.
    assert.equal(got.pending, 4, JSON.stringify(got));
    assert.equal(got.refused, 16, JSON.stringify(got));
    assert.equal(got.perAddressRejections, 16);
    assert.equal(got.pendingWithOther, 5, 'another /64 is another subscriber');
  } finally {
    await deleteNamespace(ns);
  }
});
