import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StatsPoller, type PollResult } from '../../src/radiod/icecast/stats-poller.js';
import { waitFor } from '../support/wait.js';

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
  await waitFor('three polls at a 200 ms interval', () => results.length >= 3, { timeoutMs: 3000, intervalMs: 20 })
    .catch(() => assert.fail(`${results.length} polls in 3 s with a 200 ms interval`));
});
