import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StatsPoller, type PollResult } from '../../src/radiod/icecast/stats-poller.js';

test('a wall clock stepped back an hour during a poll does not put the poller to sleep for that hour', async (t) => {
  const realNow = Date.now.bind(Date);
  let offset = 0;
  t.mock.method(Date, 'now', () => realNow() + offset);
  // Icecast answers nothing usable; while the first poll waits, the clock is stepped back.
  const server = createServer((_req, res) => {
    offset = -3_600_000;
    res.statusCode = 500;
    res.end('no');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const results: PollResult[] = [];
  const poller = new StatsPoller(() => ({ baseUrl: `http://127.0.0.1:${port}`, adminUser: 'admin', adminPassword: 'x' }), 200, (r) => void results.push(r));
  t.after(() => poller.stop());
  poller.start();
  const deadline = performance.now() + 3000;
  while (results.length < 3 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(results.length >= 3, `${results.length} polls in 3 s with a 200 ms interval`);
});
