import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { Etcd3 } from '../../src/coordination/client.js';
import { Presence } from '../../src/coordination/presence.js';
import { nodeKey } from '../../src/coordination/keys.js';
import { LOAD_MIN_INTERVAL_MS } from '../../src/coordination/status-publish-policy.js';
import { etcdPerFile, type TestEtcd } from '../support/etcd.js';
import { nodeStatus } from '../support/fixtures.js';
import { waitFor } from '../support/wait.js';

/*
 * The node status publish policy as etcd sees it: health at once, load rate-limited, whatever
 * the wall clock does meanwhile.
 */

const log = pino({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent' });
let etcd: TestEtcd;
let client: Etcd3;

etcdPerFile((e, c) => {
  etcd = e;
  client = c;
});

async function stored(name: string): Promise<{ listeners: number; icecastOk: boolean; version: string } | undefined> {
  const res = await client.get(nodeKey(name)).exec();
  const kv = res.kvs[0];
  if (!kv) return undefined;
  const s = JSON.parse(kv.value.toString()) as { listeners: number; icecastOk: boolean };
  return { listeners: s.listeners, icecastOk: s.icecastOk, version: kv.version };
}

/** Calls `publish` every 200 ms (a poll) until stopped. */
function polling(publish: () => void): { stop(): void } {
  publish();
  const timer = setInterval(publish, 200);
  return { stop: () => clearInterval(timer) };
}

test('a health change is written at once while a load change is held back', async () => {
  const presence = new Presence(client, 'health', { ttlSeconds: 5, log });
  presence.start();
  try {
    presence.publish(nodeStatus('health', { listeners: 10 }));
    await waitFor('first status written', () => stored('health'));
    // A load move, due only LOAD_MIN_INTERVAL_MS after the first write: not written yet.
    presence.publish(nodeStatus('health', { listeners: 50 }));
    const flippedAt = Date.now();
    presence.publish(nodeStatus('health', { listeners: 50, icecastOk: false }));
    const seen = await waitFor('health change in etcd', async () => {
      const s = await stored('health');
      return s?.icecastOk === false ? s : undefined;
    }, { timeoutMs: 3000 });
    assert.ok(Date.now() - flippedAt < LOAD_MIN_INTERVAL_MS, 'written at once, not with the next load write');
    assert.equal(seen.listeners, 50, 'the health write carries the newest load too');
    assert.equal(seen.version, '2', 'the held-back load move was not written on its own');
  } finally {
    await presence.stop();
  }
});

test('the wall clock stepping back an hour does not hold load writes back for an hour', async () => {
  const presence = new Presence(client, 'clock', { ttlSeconds: 5, log });
  presence.start();
  const realNow = Date.now;
  let firstWritten = false;
  const poll = polling(() => {
    // The clock was stepped back (NTP, an operator) right after the first write: every later
    // reading of the wall clock is an hour behind. Only Date.now moves here: gRPC deadlines
    // are taken from `new Date()` and stay right.
    if (firstWritten) Date.now = () => realNow() - 3_600_000;
    try {
      presence.publish(nodeStatus('clock', { listeners: firstWritten ? 50 : 10 }));
    } finally {
      Date.now = realNow;
    }
  });
  try {
    await waitFor('first status written', () => stored('clock'));
    firstWritten = true;
    const steppedAt = Date.now();
    await waitFor('load change written after the minimum interval', async () => (await stored('clock'))?.listeners === 50, {
      timeoutMs: LOAD_MIN_INTERVAL_MS + 5000,
    });
    console.log(`# measured: load_write_after_clock_step_ms=${Date.now() - steppedAt}`);
  } finally {
    poll.stop();
    await presence.stop();
  }
});
