import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { createLogger } from '../../src/common/logger.js';
import { TlsDoor } from '../../src/redirectord/http/tls-door.js';
import { startDoor } from './front-door-harness.js';
import { makeTestCa, replaceFile } from '../support/tls.js';
import { freePort } from '../support/ports.js';
import { startHttps } from '../../src/redirectord/https.js';
import { join } from 'node:path';
import { pino } from 'pino';
import { waitFor } from '../support/wait.js';

/**
 * The HTTPS port's own bounds, with the real front door behind it: handshakes in progress are
 * capped (a newcomer beyond is closed at once, not queued), a handshake that does not finish is
 * cut after its timeout, and a finished one reaches the front door's HTTP application.
 */
test('handshakes are capped and timed out; completed ones reach the front door', { timeout: 30_000 }, async (t) => {
  const ca = await makeTestCa();
  t.after(() => ca.remove());
  const files = await ca.issue('door', ['radio.test']);
  const d = await startDoor({});
  t.after(() => d.close());
  const door = new TlsDoor({
    frontDoor: d.door,
    credentials: { cert: await readFile(files.certFile), key: await readFile(files.keyFile) },
    log: createLogger('tls-door-test', process.env.TEST_LOG_LEVEL ?? 'silent'),
    metrics: d.metrics,
    handshakeTimeoutMs: 1500,
    maxHandshakes: 3,
  });
  door.listen(0, '127.0.0.1');
  await once(door, 'listening');
  t.after(() => door.close());
  const port = (door.address() as { port: number }).port;

  const closedAt = (s: Socket) => new Promise<number>((resolve) => s.once('close', () => resolve(Date.now())));
  const silent = Array.from({ length: 3 }, () => netConnect(port, '127.0.0.1').on('error', () => undefined));
  const silentClosed = silent.map(closedAt);
  await waitFor('three handshakes in progress', () => door.pendingHandshakes === 3);

  const started = Date.now();
  const fourth = netConnect(port, '127.0.0.1').on('error', () => undefined);
  const fourthClosed = await closedAt(fourth);
  assert.ok(fourthClosed - started < 1000, `the newcomer beyond the cap was closed at once (${fourthClosed - started} ms)`);
  assert.equal(d.metrics.count('front_door.tls.rejected.handshakes'), 1);

  const cut = await Promise.all(silentClosed);
  for (const at of cut) assert.ok(at - started < 5000, 'silent handshakes cut by the timeout');
  await waitFor('the slots freed', () => door.pendingHandshakes === 0);
  assert.equal(d.metrics.count('front_door.tls.rejected.timeout'), 3);

  // A real client now: its request reaches the HTTP application behind the front door.
  const client = tlsConnect({ host: '127.0.0.1', port, servername: 'radio.test', ca: await readFile(ca.caFile) });
  await once(client, 'secureConnect');
  client.write('GET /hello HTTP/1.1\r\nHost: radio.test\r\nConnection: close\r\n\r\n');
  const chunks: Buffer[] = [];
  client.on('data', (c: Buffer) => chunks.push(c));
  await once(client, 'end');
  assert.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 200[^]*app GET \/hello/);
  assert.equal(d.metrics.count('front_door.http'), 1);
});

test('HTTPS stays off without certificate files, and opens when good files appear', { timeout: 30_000 }, async (t) => {
  const ca = await makeTestCa();
  t.after(() => ca.remove());
  const d = await startDoor({});
  t.after(() => d.close());
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });

  const off = await startHttps({ port: await freePort(), frontDoor: d.door, log, metrics: d.metrics });
  assert.equal(off, undefined);
  assert.ok(lines.some((l) => l.includes('HTTPS off: no certificate')), lines.join('\n'));

  const port = await freePort();
  const certFile = join(ca.dir, 'later.crt');
  const keyFile = join(ca.dir, 'later.key');
  const https = await startHttps({ port, certFile, keyFile, frontDoor: d.door, log, metrics: d.metrics });
  assert.ok(https);
  t.after(() => https.close());
  assert.ok(lines.some((l) => l.includes('HTTPS waits for a good certificate')), lines.join('\n'));
  const refused = netConnect(port, '127.0.0.1');
  const [err] = (await once(refused, 'error').catch((e: unknown) => [e])) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNREFUSED', 'nothing listens before a certificate');

  const issued = await ca.issue('later', ['radio.test']);
  await replaceFile(issued.keyFile, keyFile);
  await replaceFile(issued.certFile, certFile);
  const ca_ = await readFile(ca.caFile);
  await waitFor('HTTPS open with the new files', async () => {
    const c = tlsConnect({ host: '127.0.0.1', port, servername: 'radio.test', ca: ca_ });
    try {
      await once(c, 'secureConnect');
      return true;
    } catch {
      return false;
    } finally {
      c.destroy();
    }
  }, { timeoutMs: 15_000, intervalMs: 100 });
  assert.equal(https.certificate()?.names, 'DNS:radio.test');
});
