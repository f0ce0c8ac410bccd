import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inheritedSocket, inheritedSockets } from '../../src/common/systemd-sockets.js';

test('sockets handed over by systemd: only for this pid, counted from fd 3, named by LISTEN_FDNAMES', () => {
  const env = { LISTEN_PID: '42', LISTEN_FDS: '2', LISTEN_FDNAMES: 'http:https' };
  assert.deepEqual(inheritedSockets(env, 42), [
    { fd: 3, name: 'http' },
    { fd: 4, name: 'https' },
  ]);
  assert.deepEqual(inheritedSocket(inheritedSockets(env, 42), 'http'), { fd: 3, name: 'http' });
  // Variables inherited from a parent that was activated: not ours.
  assert.deepEqual(inheritedSockets(env, 43), []);
  for (const bad of ['0', '-1', '1.5', 'x', '', '65']) assert.deepEqual(inheritedSockets({ ...env, LISTEN_FDS: bad }, 42), [], bad);
  assert.deepEqual(inheritedSockets({}, 42), []);
  // One unnamed socket is the one; one named otherwise is not ours to take.
  assert.deepEqual(inheritedSocket(inheritedSockets({ LISTEN_PID: '7', LISTEN_FDS: '1' }, 7), 'http'), { fd: 3, name: 'unknown' });
  assert.equal(inheritedSocket(inheritedSockets({ LISTEN_PID: '7', LISTEN_FDS: '1', LISTEN_FDNAMES: 'dns' }, 7), 'http'), undefined);
});
