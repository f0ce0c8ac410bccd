import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { pino } from 'pino';
import { SourceAuthServer, SOURCE_AUTH_HEADER } from '../../src/radiod/source-auth/server.js';
import type { Mount } from '../../src/coordination/mount.js';
import type { Metrics } from '../../src/common/metrics.js';
import { waitFor } from '../support/wait.js';

/** radiod's source authenticator on loopback, as Icecast (and anything else on the host) reaches it. */
const live: Mount = { path: '/live.mp3', username: 'source', password: 'right-password-1' };
const counted: string[] = [];
const metrics = { increment: (name: string, _n?: number, tags?: Record<string, string>) => counted.push(`${name}:${tags?.['result']}`) } as unknown as Metrics;
let master = true;

async function server(): Promise<{ url: URL; stop: () => Promise<void> }> {
  const s = new SourceAuthServer({ mounts: () => new Map([[live.path, live]]), mayTakeSources: () => master, log: pino({ level: 'silent' }), metrics });
  const url = new URL(await s.start());
  return { url, stop: () => s.stop() };
}

const body = (pass: string) => `action=stream_auth&mount=%2flive%2emp3&ip=127%2e0%2e0%2e1&server=x&port=8000&user=source&pass=${pass}`;

async function ask(url: URL, payload: string, method = 'POST'): Promise<Response> {
  return fetch(url, { method, body: method === 'GET' ? undefined : payload, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
}

test('answers with the header only for the right credentials on the master, at the moment of asking', async () => {
  const { url, stop } = await server();
  try {
    master = true;
    assert.equal((await ask(url, body('right-password-1'))).headers.get(SOURCE_AUTH_HEADER), '1');
    assert.equal((await ask(url, body('wrong'))).headers.get(SOURCE_AUTH_HEADER), null);
    master = false;
    assert.equal((await ask(url, body('right-password-1'))).headers.get(SOURCE_AUTH_HEADER), null, 'fenced: refused at once');
    master = true;
    assert.equal((await ask(url, '', 'GET')).status, 405);
    assert.ok(counted.includes('source_auth:allowed') && counted.includes('source_auth:refused'));
    assert.equal(url.hostname, '127.0.0.1', 'loopback only: it answers whether a password is right');
  } finally {
    await stop();
  }
});

test('hostile input: an oversized body, a dribbled body, garbage and a crowd of connections harm nothing', async () => {
  const { url, stop } = await server();
  try {
    master = true;
    const big = await ask(url, 'a'.repeat(64 * 1024)).catch(() => undefined);
    assert.ok(big === undefined || big.status === 413);
    // One byte at a time, slower than the request timeout: the connection is closed, nothing allowed.
    const dribble = connect(Number(url.port), '127.0.0.1');
    let answer = '';
    dribble.on('data', (d) => (answer += d.toString()));
    const closed = new Promise<void>((r) => dribble.on('close', () => r()));
    dribble.write(`POST /source-auth HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n`);
    const timer = setInterval(() => dribble.writable && dribble.write('a'), 200);
    await closed;
    clearInterval(timer);
    assert.ok(!answer.toLowerCase().includes(SOURCE_AUTH_HEADER), answer);
    for (const junk of ['\x00\x01\x02', 'action=stream_auth&mount=%ff%fe&user=%c3&pass=%', 'action=stream_auth&action=stream_auth&mount=/live.mp3&mount=/x&user=source&pass=right-password-1&pass=x']) {
      const r = await ask(url, junk);
      assert.equal(r.headers.get(SOURCE_AUTH_HEADER), null, junk);
    }
    // 200 connections at once, then a normal question is still answered.
    const crowd = await Promise.all(Array.from({ length: 200 }, () => ask(url, body('wrong')).then((r) => r.status).catch(() => 0)));
    assert.ok(crowd.filter((s) => s === 200).length > 150, JSON.stringify(crowd.slice(0, 10)));
    await waitFor('still answering', async () => (await ask(url, body('right-password-1'))).headers.get(SOURCE_AUTH_HEADER) === '1');
  } finally {
    await stop();
  }
});
