import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNodeAnswer } from '../../src/radioctl/node-listeners.js';
import { describeListeners } from '../../src/radioctl/format.js';

/**
 * The operator view under attack: what listeners (user agents, referers) and nodes (answers)
 * choose must neither hide other listeners nor reach the operator's terminal as control codes.
 */

const answerWith = (userAgent: string | null, referer: string | null = null) =>
  JSON.stringify({
    mounts: [
      {
        mount: '/a.mp3',
        listeners: [
          { id: 1, address: '198.51.100.1', userAgent, referer, since: '2026-12-05T02:00:00.000Z', connectedSeconds: 3, bytes: 9 },
          { id: 2, address: '198.51.100.2', userAgent: 'VLC/3.0.21', referer: null, since: '2026-12-05T02:00:00.000Z', connectedSeconds: 3, bytes: 9 },
        ],
      },
    ],
  });

test("one listener's long user agent or referer does not hide the node's other listeners", () => {
  // A request head may be 16 KiB: a user agent of 10,000 characters reaches listclients as is.
  for (const [ua, ref] of [['A'.repeat(10_000), null], ['VLC', `https://x/${'r'.repeat(10_000)}`]] as const) {
    const parsed = parseNodeAnswer('n1', answerWith(ua, ref));
    assert.ok(Array.isArray(parsed), JSON.stringify(parsed).slice(0, 200));
    assert.deepEqual(parsed.map((l) => l.address), ['198.51.100.1', '198.51.100.2']);
  }
});

test("nothing a listener or a node chose reaches the operator's terminal as a control code", () => {
  const parsed = parseNodeAnswer('n1', answerWith('evil\u009b2J\u0085agent\u202e'));
  assert.ok(Array.isArray(parsed));
  // C1 controls (U+009B is CSI to VTE and xterm) arrive from a head's latin1 bytes 0x80-0x9f.
  const hostileNode = { ...parsed[0]!, node: 'n\x1b]0;x\x07', mount: '/a\u009b.mp3', address: '198.51.100.1\x1b[2J' };
  const text = describeListeners({
    listeners: [parsed[0]!, hostileNode],
    unanswered: [{ node: 'n9\x1b[2J', error: 'HTTP 500: \x1b[31mred\u009b1m\nwarning: forged line' }],
  });
  // eslint-disable-next-line no-control-regex
  assert.doesNotMatch(text, /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/, JSON.stringify(text));
  // The only line breaks are the table's own: the forged warning stays on its node's line.
  assert.equal(text.split('\n').filter((l) => l.startsWith('warning:')).length, 1);
});
