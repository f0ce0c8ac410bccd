import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRadiodOptions, radiodCommand, relayViaFlag } from '../../src/radiod/options.js';

test('--relay-via: "direct", IPv4:port or [IPv6]:port; anything else is refused with the flag named', () => {
  assert.equal(relayViaFlag('direct'), 'direct');
  assert.deepEqual(relayViaFlag('127.0.0.1:80'), { host: '127.0.0.1', port: 80 });
  assert.deepEqual(relayViaFlag('[::1]:8080'), { host: '::1', port: 8080 });
  for (const bad of ['', 'localhost:80', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:65536', '::1:80', '[::1]', '300.1.1.1:80', 'direct ']) {
    assert.throws(() => relayViaFlag(bad), /--relay-via/, bad);
  }
});

test('radiod relays through the local front door on port 80 unless told otherwise', () => {
  const base = ['node', 'radiod', '--domain', 'radio.test', '--name', 'n1', '--ip', '192.0.2.1'];
  assert.deepEqual(parseRadiodOptions(base).relayVia, { host: '127.0.0.1', port: 80 });
  assert.equal(parseRadiodOptions([...base, '--relay-via', 'direct']).relayVia, 'direct');
});

test('--icecast-kill-stalled-after: off (0) unless set, whole seconds up to an hour, refused otherwise with the flag named', () => {
  const base = ['node', 'radiod', '--domain', 'radio.test', '--name', 'n1', '--ip', '192.0.2.1'];
  assert.equal(parseRadiodOptions(base).icecastKillStalledAfter, 0);
  assert.equal(parseRadiodOptions([...base, '--icecast-kill-stalled-after', '20']).icecastKillStalledAfter, 20);
  for (const bad of ['-1', '1.5', 'abc', '3601', '']) {
    const cmd = radiodCommand().exitOverride().configureOutput({ writeErr: () => {} });
    assert.throws(() => parseRadiodOptions([...base, '--icecast-kill-stalled-after', bad], cmd), /--icecast-kill-stalled-after/, bad);
  }
});
