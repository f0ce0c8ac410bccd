import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listclientsUrl, parseNodeAnswer, sortListeners, type NodeListener } from '../../src/radioctl/node-listeners.js';
import { describeListeners } from '../../src/radioctl/format.js';

const listener = (over: Partial<NodeListener>): NodeListener => ({
  node: 'n1',
  mount: '/a.mp3',
  address: '198.51.100.1',
  userAgent: 'VLC/3.0.21',
  referer: null,
  since: '2026-12-05T02:00:00.000Z',
  connectedSeconds: 10,
  bytes: 1000,
  ...over,
});

test("a node's answer becomes its listeners; anything else is a reason, never a throw", () => {
  const body = JSON.stringify({
    mounts: [{ mount: '/a.mp3', listeners: [{ id: 4, address: '2001:db8::1', userAgent: null, referer: 'https://x/', since: '2026-12-05T02:00:00.000Z', connectedSeconds: 3, bytes: 9 }] }],
  });
  assert.deepEqual(parseNodeAnswer('n2', body), [
    { node: 'n2', mount: '/a.mp3', address: '2001:db8::1', userAgent: null, referer: 'https://x/', since: '2026-12-05T02:00:00.000Z', connectedSeconds: 3, bytes: 9 },
  ]);
  for (const bad of ['', 'null', '<icestats/>', '{"mounts":{}}', '{"mounts":[{"mount":"/a","listeners":[{"address":"x"}]}]}', JSON.stringify({ mounts: [{ mount: '/a', listeners: [{ address: 'x', userAgent: 1, referer: null, since: 's', connectedSeconds: -1, bytes: 0 }] }] })]) {
    const r = parseNodeAnswer('n2', bad);
    assert.ok(!Array.isArray(r) && typeof r.error === 'string', bad);
  }
});

test('the URL names the node by address (IPv6 in brackets) and the mount percent-encoded', () => {
  assert.equal(listclientsUrl('192.0.2.7', 80, undefined), 'http://192.0.2.7:80/admin/listclients.json');
  assert.equal(listclientsUrl('2001:db8::7', 8080, '/live/a b.mp3'), 'http://[2001:db8::7]:8080/admin/listclients.json?mount=%2Flive%2Fa%20b.mp3');
});

test('the list: by mount, longest connected first; the table cleans what clients chose', () => {
  const sorted = sortListeners([
    listener({ mount: '/b.mp3', node: 'n1' }),
    listener({ connectedSeconds: 5, node: 'n2' }),
    listener({ connectedSeconds: 7300, node: 'n3', userAgent: 'evil\x1b[2J\nagent' }),
  ]);
  assert.deepEqual(sorted.map((l) => `${l.mount} ${l.node}`), ['/a.mp3 n3', '/a.mp3 n2', '/b.mp3 n1']);
  const text = describeListeners({ listeners: sorted, unanswered: [{ node: 'n4', code: 'unreachable', error: 'fetch failed' }] });
  assert.equal(
    text,
    [
      'MOUNT   NODE  ADDRESS       CONNECTED  BYTES  USER AGENT',
      '/a.mp3  n3    198.51.100.1  2h01m      1000   evil?[2J?agent',
      '/a.mp3  n2    198.51.100.1  5s         1000   VLC/3.0.21',
      '/b.mp3  n1    198.51.100.1  10s        1000   VLC/3.0.21',
      '3 listeners on 3 nodes',
      'warning: n4 did not answer (fetch failed): its listeners are missing',
    ].join('\n'),
  );
  assert.equal(describeListeners({ listeners: [], unanswered: [] }), '0 listeners');
});
