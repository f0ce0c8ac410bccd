import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { mergeNodeAnswers, parseNodeAnswer, type UnansweredCode } from '../../src/radioctl/node-listeners.js';
import { askNode, type AskTimes } from '../../src/radioctl/commands/listeners.js';
import {
  LISTCLIENTS_TEXT_MAX,
  listclientsRequest,
  renderListclientsJson,
  renderListclientsXml,
  type CurrentListener,
} from '../../src/redirectord/access/listclients.js';
import { formatAccessLogLine } from '../../src/redirectord/access/access-log-line.js';
import { headerText } from '../../src/redirectord/http/request-head.js';
import { describeListeners } from '../../src/radioctl/format.js';
import { printJson } from '../../src/radioctl/context.js';

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
    unanswered: [{ node: 'n9\x1b[2J', code: 'http_status', error: 'HTTP 500: \x1b[31mred\u009b1m\nwarning: forged line' }],
  });
  // eslint-disable-next-line no-control-regex
  assert.doesNotMatch(text, /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/, JSON.stringify(text));
  // The only line breaks are the table's own: the forged warning stays on its node's line.
  assert.equal(text.split('\n').filter((l) => l.startsWith('warning:')).length, 1);
});

/** A node's front door that answers each request its own hostile way; every socket is ended by close(). */
async function hostileNode(onRequest: (s: Socket, head: Buffer) => void, host = '127.0.0.1'): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.once('data', (head: Buffer) => onRequest(s, head));
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

const MIB = Buffer.alloc(1 << 20, 0x20);
/** Writes as fast as the peer reads, until it goes. */
function flood(s: Socket): void {
  const pump = (): void => {
    while (!s.destroyed && s.write(MIB));
    if (!s.destroyed) s.once('drain', pump);
  };
  pump();
}
function drip(s: Socket, text: string): void {
  const t = setInterval(() => s.write(text), 20);
  s.on('close', () => clearInterval(t));
}

const QUICK = { idleMs: 300, totalMs: 800 };

// Floods are given time to reach the size bound, even on a loaded machine.
const ROOMY = { idleMs: 5000, totalMs: 20_000 };

const HOSTILE: [string, (s: Socket) => void, RegExp, UnansweredCode, AskTimes?][] = [
  ['accepts and never answers', () => {}, /nothing received for 300 ms/, 'timeout'],
  ['trickles its head', (s) => (s.write('HTTP/1.1 200 OK\r\n'), drip(s, 'X-A: b\r\n')), /within 800 ms|nothing received/, 'timeout'],
  ['trickles its body', (s) => (s.write('HTTP/1.1 200 OK\r\n\r\n{'), drip(s, ' ')), /within 800 ms/, 'timeout'],
  ['sends an endless body as fast as it is read', (s) => (s.write('HTTP/1.1 200 OK\r\n\r\n'), flood(s)), /over .* bytes/, 'too_large', ROOMY],
  ['announces a huge body', (s) => (s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${2 ** 40}\r\n\r\n`), flood(s)), /over .* bytes/, 'too_large', ROOMY],
  ['redirects elsewhere', (s) => s.end('HTTP/1.1 302 Found\r\nLocation: http://198.51.100.1/\r\nContent-Length: 0\r\n\r\n'), /302/, 'http_status'],
  ['refuses the credentials', (s) => s.end('HTTP/1.0 401 Unauthorized\r\n\r\n\x1b[2Jdenied'), /^HTTP 401: \x1b\[2Jdenied$/, 'http_status'],
  ['resets the connection', (s) => s.resetAndDestroy(), /./, 'unreachable'],
  ['answers garbage', (s) => s.end('\x00\x01garbage\r\n\r\n'), /./, 'invalid_answer'],
];

for (const [what, onRequest, error, code, times = QUICK] of HOSTILE) {
  test(`radioctl listeners: a node that ${what} is named, in bounded time and memory`, async () => {
    const node = await hostileNode(onRequest);
    try {
      const started = Date.now();
      const answer = await askNode('127.0.0.1', node.port, '/a.mp3', 'pw', times);
      assert.ok(typeof answer !== 'string', `answered ${String(answer).length} characters`);
      assert.match(answer.error, error);
      assert.equal(answer.code, code);
      assert.ok(Date.now() - started < times.totalMs + 2000, `took ${Date.now() - started} ms`);
    } finally {
      await node.close();
    }
  });
}

test('radioctl listeners: an answer that is not the document is named, not thrown', async () => {
  const node = await hostileNode((s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n<icestats/>'));
  try {
    const answer = await askNode('127.0.0.1', node.port, undefined, 'pw', { idleMs: 2000, totalMs: 2000 });
    assert.equal(answer, '<icestats/>');
    assert.deepEqual(parseNodeAnswer('n1', answer as string), { code: 'invalid_answer', error: 'the answer is not JSON' });
  } finally {
    await node.close();
  }
});

test('the mount parameter is a mount path or a 400: nothing else is echoed into the document', () => {
  for (const query of [
    '?mount=/%EF%BF%BE', // U+FFFE: no XML 1.0 character, even escaped
    '?mount=/%EF%BF%BF',
    '?mount=/a%00b',
    '?mount=/a%0d%0a',
    '?mount=/../admin/stats',
    '?mount=/%2E%2E/x',
    '?mount=//evil',
    `?mount=/${'a'.repeat(5000)}`,
    '?mount=/a]]%3E%3Cx',
    '?mount=/a"%20b',
  ]) {
    assert.ok('error' in listclientsRequest('xml', query), query);
  }
  // What still passes is a mount path, so the document stays well-formed whatever was asked.
  assert.deepEqual(listclientsRequest('xml', '?mount=%2Flive%2Fa.mp3&x=%FF'), { format: 'xml', mount: '/live/a.mp3' });
  assert.match(renderListclientsXml([], { format: 'xml', mount: '/live/a.mp3' }, 0), /<source mount="\/live\/a.mp3">/);
});

test("a header's bytes are read as UTF-8, as clients send them; invalid bytes become U+FFFD", () => {
  // The head is parsed as latin1 (offsets are bytes): "Müller" arrives as "MÃ¼ller".
  assert.equal(headerText(Buffer.from('Radio Müller/1.0 ♫').toString('latin1')), 'Radio Müller/1.0 ♫');
  assert.equal(headerText('bad \xff\xfe end'), 'bad \ufffd\ufffd end');
  assert.equal(headerText(undefined), undefined);
  assert.equal(headerText('plain'), 'plain');
});

test('the access log escapes C1 controls too: `tail -f` must not run a listener\'s escape sequence', () => {
  const line = formatAccessLogLine({
    address: '198.51.100.1',
    method: 'GET',
    target: '/a.mp3',
    version: 'HTTP/1.1',
    status: 200,
    bytes: 1,
    userAgent: 'x\u009b2Jy\x1b[31m"\\',
    referer: '\u0085\u009d0;title\u009c',
    startedAt: 0,
    endedAt: 1000,
  });
  // eslint-disable-next-line no-control-regex
  assert.doesNotMatch(line, /[\x00-\x1f\x7f-\x9f]/, JSON.stringify(line));
  assert.match(line, /"\\x85\\x9d0;title\\x9c" "x\\x9b2Jy\\x1b\[31m\\"\\\\" 1$/);
});

test('a user agent read as UTF-8 cannot make the XML ill-formed: noncharacters and lone surrogates are dropped', () => {
  // EF BF BE is valid UTF-8 for U+FFFE, which XML 1.0 forbids even as a reference.
  const bytes = Buffer.concat([Buffer.from('a\xef\xbf\xbeb\xef\xbf\xbfc', 'latin1'), Buffer.from(' \u{1f3b5}')]);
  const ua = headerText(bytes.toString('latin1'))!;
  assert.equal(ua, 'a\ufffeb\uffffc \u{1f3b5}');
  const xml = renderListclientsXml([{ id: 1, mount: '/a.mp3', address: '::1', userAgent: `${ua}\ud800`, since: 0, bytes: 0 }], { format: 'xml' }, 0);
  assert.doesNotMatch(xml, /[\ufffe\uffff]|[\ud800-\udfff]/u);
  assert.match(xml, /<UserAgent>abc \u{1f3b5}<\/UserAgent>/u);
});

test("the documents stay bounded whatever listeners send: the front door's 28,000 connections with worst-case heads", () => {
  // A 16 KiB head of control bytes or quotes: 6 characters each once escaped (\u0001, &quot;).
  // Unbounded, 6,000 such listeners made the document longer than a string can be (RangeError,
  // thrown inside the front door's socket callback).
  const worst = (c: string) => c.repeat(8000);
  const many: CurrentListener[] = Array.from({ length: 28_000 }, (_, i) => ({
    id: i,
    mount: '/a.mp3',
    address: '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff',
    userAgent: worst(i % 2 ? '\x01' : '"'),
    referer: worst('"'),
    since: 0,
    bytes: 2 ** 40,
  }));
  const json = renderListclientsJson(many, { format: 'json' }, 0);
  const xml = renderListclientsXml(many, { format: 'xml' }, 0);
  // radioctl reads at most 64 MiB from a node.
  assert.ok(Buffer.byteLength(json) < 64 * 1024 * 1024, `JSON ${json.length}`);
  assert.ok(xml.length < 128 * 1024 * 1024, `XML ${xml.length}`);
  const first = (JSON.parse(json) as { mounts: { listeners: { userAgent: string; referer: string }[] }[] }).mounts[0]!.listeners[0]!;
  assert.equal(first.userAgent, `${'"'.repeat(LISTCLIENTS_TEXT_MAX - 1)}…`);
  assert.equal(first.referer.length, LISTCLIENTS_TEXT_MAX);
});

test('radioctl listeners: an address no URL can carry (an IPv6 zone) is that node\'s error, not the whole command\'s', async () => {
  const answer = await askNode('fe80::1%no-such-if0', 9, '/a.mp3', 'pw', QUICK);
  assert.ok(typeof answer !== 'string' && answer.error.length > 0);
  const refused = await askNode('127.0.0.1', 9, undefined, 'pw', QUICK);
  assert.ok(typeof refused !== 'string' && refused.code === 'unreachable', JSON.stringify(refused));
  assert.deepEqual(await askNode(undefined, 80, undefined, 'pw'), { code: 'no_address', error: 'it publishes no address' });
});

test('radioctl listeners: a node at an IPv6 address is asked for the encoded mount with the admin credentials', async () => {
  let request = '';
  const node = await hostileNode((s, head) => {
    request = head.toString('latin1');
    s.end('HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{"mounts":[]}');
  }, '::1');
  try {
    assert.equal(await askNode('::1', node.port, '/a b.mp3', 'pw', { idleMs: 2000, totalMs: 2000 }), '{"mounts":[]}');
    assert.match(request, /^GET \/admin\/listclients\.json\?mount=%2Fa%20b\.mp3 HTTP\/1\.1\r\n/);
    assert.match(request, new RegExp(`\r\nauthorization: Basic ${Buffer.from('admin:pw').toString('base64')}\r\n`, 'i'));
  } finally {
    await node.close();
  }
});

test('radioctl listeners: a long answer arriving steadily is read whole, past the time a silent node gets', async () => {
  const doc = JSON.stringify({ mounts: [{ mount: '/a.mp3', listeners: [] }], pad: 'x'.repeat(50_000) });
  const node = await hostileNode((s) => {
    s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${doc.length}\r\n\r\n`);
    // 5 kB every 100 ms: about a second in all, three times the silence allowed.
    let sent = 0;
    const t = setInterval(() => {
      s.write(doc.slice(sent, sent + 5000));
      sent += 5000;
      if (sent >= doc.length) clearInterval(t);
    }, 100);
    s.on('close', () => clearInterval(t));
  });
  try {
    assert.equal(await askNode('127.0.0.1', node.port, undefined, 'pw', { idleMs: 300, totalMs: 5000 }), doc);
  } finally {
    await node.close();
  }
});

test('a user agent cut at the bound never ends on half a character (a lone surrogate strict JSON readers refuse)', () => {
  const ua = `${'a'.repeat(LISTCLIENTS_TEXT_MAX - 2)}\u{1f3b5}\u{1f3b5}tail`;
  const json = renderListclientsJson([{ id: 1, mount: '/a.mp3', address: '::1', userAgent: ua, since: 0, bytes: 0 }], { format: 'json' }, 0);
  assert.doesNotMatch(json, /\\ud[89a-f]/i);
  const shown = (JSON.parse(json) as { mounts: { listeners: { userAgent: string }[] }[] }).mounts[0]!.listeners[0]!.userAgent;
  assert.equal(shown, `${'a'.repeat(LISTCLIENTS_TEXT_MAX - 2)}…`);
});

test('radioctl --json: control characters a listener chose are escaped, the same JSON value reaches the terminal inert', () => {
  const lines: string[] = [];
  const value = { listeners: [{ userAgent: 'a\u009b2Jb\u0085\x7f\u202ec\x1b' }], unanswered: [] };
  printJson({ json: true, out: (t) => lines.push(t), client: undefined as never }, value);
  // eslint-disable-next-line no-control-regex
  assert.doesNotMatch(lines.join('\n'), /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/);
  assert.deepEqual(JSON.parse(lines.join('\n')), value);
});

test('the documents carry no C1 control a listener sent: curl showing them in a terminal stays inert', () => {
  const l: CurrentListener = { id: 1, mount: '/a.mp3', address: '::1', userAgent: 'a\u009b2Jb\u0085c', referer: '\u009dx', since: 0, bytes: 0 };
  assert.match(renderListclientsXml([l], { format: 'xml' }, 0), /<UserAgent>a2Jbc<\/UserAgent>/);
  const json = JSON.parse(renderListclientsJson([l], { format: 'json' }, 0)) as { mounts: { listeners: { userAgent: string; referer: string }[] }[] };
  assert.deepEqual([json.mounts[0]!.listeners[0]!.userAgent, json.mounts[0]!.listeners[0]!.referer], ['a2Jbc', 'x']);
});

test("radioctl listeners: a node's answer with half a million bad entries is one short reason, found quickly", () => {
  // 7 MB: every entry collected as an error took seconds, 1.2 GB and gave a 193-million-character warning.
  const bad = JSON.stringify({ mounts: [{ mount: '/a', listeners: Array.from({ length: 500_000 }, () => ({ address: 1 })) }] });
  const started = Date.now();
  const parsed = parseNodeAnswer('n1', bad);
  assert.ok(!Array.isArray(parsed));
  assert.ok(parsed.error.length < 300, `${parsed.error.length} characters`);
  assert.match(parsed.error, /^unexpected answer: \/mounts\/0\/listeners\/0/);
  assert.ok(Date.now() - started < 2000, `${Date.now() - started} ms`);
});

test("radioctl listeners: a node claiming 200,000 listeners (13 MB) is merged, not a stack overflow that fails the command", () => {
  const entry = { address: '198.51.100.1', userAgent: null, referer: null, since: '2026-12-05T02:00:00.000Z', connectedSeconds: 1, bytes: 1 };
  const huge = JSON.stringify({ mounts: [{ mount: '/a.mp3', listeners: Array.from({ length: 200_000 }, () => entry) }] });
  const merged = mergeNodeAnswers([
    { node: 'n1', answer: huge },
    { node: 'n2', answer: { code: 'unreachable', error: 'connect ECONNREFUSED' } },
    { node: 'n3', answer: 'garbage' },
  ]);
  assert.equal(merged.listeners.length, 200_000);
  assert.deepEqual(merged.unanswered, [
    { node: 'n2', code: 'unreachable', error: 'connect ECONNREFUSED' },
    { node: 'n3', code: 'invalid_answer', error: 'the answer is not JSON' },
  ]);
});
