import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { Shutdown } from '../../src/common/shutdown.js';

const quiet = pino({ level: 'silent' });

test('steps run once, in the order added, past a failing step; then exit 0', async () => {
  const ran: string[] = [];
  const exits: number[] = [];
  const s = new Shutdown(quiet, 5000, (code) => exits.push(code))
    .step('a', () => ran.push('a'))
    .step('b', () => {
      ran.push('b');
      throw new Error('b failed');
    })
    .step('c', async () => ran.push('c'));
  assert.equal(s.stopping, false);
  await Promise.all([s.stop('SIGTERM'), s.stop('SIGINT')]);
  assert.equal(s.stopping, true);
  assert.deepEqual(ran, ['a', 'b', 'c']);
  assert.deepEqual(exits, [0]);
});

test('a hanging step: the force timer exits with 1', async () => {
  const exits: number[] = [];
  let exited!: () => void;
  const forced = new Promise<void>((r) => (exited = r));
  const s = new Shutdown(quiet, 50, (code) => {
    exits.push(code);
    exited();
  }).step('hang', () => new Promise(() => {}));
  void s.stop('SIGTERM');
  await forced;
  assert.deepEqual(exits, [1]);
});
