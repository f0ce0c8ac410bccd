import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseLiquidsoapLine } from '../../src/radiod/transcoder/process.js';

test('liquidsoap log lines map to pino levels and keep their source', () => {
  assert.deepEqual(parseLiquidsoapLine('2026/11/22 02:21:45 [/low.mp3:3] Connecting mount /low.mp3 for lowuser@127.0.0.1...'), {
    level: 'info',
    fields: { from: 'liquidsoap', source: '/low.mp3' },
    msg: 'Connecting mount /low.mp3 for lowuser@127.0.0.1...',
  });
  assert.equal(parseLiquidsoapLine('2026/11/22 02:21:45 [main:1] dead').level, 'error');
  assert.equal(parseLiquidsoapLine('2026/11/22 02:21:45 [x:2] severe').level, 'warn');
  assert.equal(parseLiquidsoapLine('2026/11/22 02:21:45 [x:4] chatty').level, 'debug');
  assert.equal(parseLiquidsoapLine('2026/11/22 02:21:45 [sandbox:3] Could not find binary bwrap, disabling sandboxing.').level, 'debug');
});

test('other output (ffmpeg, setpriv) is logged as is', () => {
  const r = parseLiquidsoapLine('setpriv: failed to execute /x/liquidsoap: No such file or directory');
  assert.equal(r.level, 'info');
  assert.equal(r.msg, 'setpriv: failed to execute /x/liquidsoap: No such file or directory');
  assert.equal(r.fields['source'], undefined);
});
