import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RunOutput } from '../../src/radiod/transcoder/run-output.js';
import { liquidsoapEnv } from '../../src/radiod/transcoder/process.js';

const REJECTED = [
  'At /var/cache/x/low.liq, line 9, char 6-17:',
  '  v = getenv(name)',
  'Error 15: Missing arguments in function application: string.',
];

test('a run that printed an Error before any log line was a rejected script, with that text as reason', () => {
  const out = new RunOutput();
  for (const l of REJECTED) assert.equal(out.keep(l, false), true);
  assert.equal(out.scriptRejection(1), `${REJECTED[0]} v = getenv(name) ${REJECTED[2]}`);
});

test('once liquidsoap logs with timestamps the script was accepted: nothing is kept or blamed on it', () => {
  const out = new RunOutput();
  out.keep('some warning', false);
  assert.equal(out.keep('2026/11/22 02:20:45 [main:3] Liquidsoap 2.3.2', true), false);
  assert.equal(out.keep('Error 1: later ffmpeg chatter', false), false);
  assert.deepEqual(out.drain(), ['some warning']);
  assert.equal(out.scriptRejection(1), undefined);
});

test('no rejection without an Error line or with a clean exit', () => {
  const plain = new RunOutput();
  plain.keep('setpriv: failed to execute liquidsoap: No such file or directory', false);
  assert.equal(plain.scriptRejection(127), undefined);
  const clean = new RunOutput();
  for (const l of REJECTED) clean.keep(l, false);
  assert.equal(clean.scriptRejection(0), undefined);
});

test("liquidsoap's cache goes to the unit's cache directory, and no other variable of radiod's passes", () => {
  const env = liquidsoapEnv({ PATH: '/usr/bin', HOME: '/usr/share/icecast2', CACHE_DIRECTORY: '/var/cache/autoradio-radiod', AUTORADIO_ETCD_KEY: 'k' });
  assert.deepEqual(env, { PATH: '/usr/bin', LANG: 'C.UTF-8', HOME: '/usr/share/icecast2', LIQ_CACHE_USER_DIR: '/var/cache/autoradio-radiod' });
  assert.equal(liquidsoapEnv({ LIQ_CACHE_USER_DIR: '/c', CACHE_DIRECTORY: '/d' })['LIQ_CACHE_USER_DIR'], '/c');
  assert.equal(liquidsoapEnv({ XDG_CACHE_HOME: '/x' })['XDG_CACHE_HOME'], '/x');
});
