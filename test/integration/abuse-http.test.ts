import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import dnsPacket from 'dns-packet';
import { waitFor } from '../support/wait.js';
import type { Managed } from '../support/processes.js';
import {
  baseline,
  fdCount,
  ffmpegSource,
  listen,
  openSocket,
  rawExchange,
  assertAlive,
  startRedirectord,
  startStack,
  type Daemon,
  waitNearBaseline,
  type Baseline,
  type RawResult,
  type Stack,
} from './hardening-harness.js';

/**
 * Hostile input at the real redirectord process (front door, handed-over HTTP app, DNS), all on
 * loopback. Afterwards the daemon must still answer correctly with its descriptors and memory
 * back near where they started.
 */

let stack: Stack;
let port: number;
/** A second redirectord of the same cluster on ::1, for the IPv6 transports. */
let v6: Daemon;
let port6: number;
let base: Baseline;
const extra: Managed[] = [];

before(async () => {
  stack = await startStack({ mountPaths: ['/live.mp3'] });
  port = stack.redirectord.httpPort;
  // Warm up the code paths once so the baseline includes lazily loaded modules and buffers.
  for (let i = 0; i < 5; i++) {
    await fetch(`http://127.0.0.1:${port}/status.json`).then((r) => r.text());
    await fetch(`http://127.0.0.1:${port}/live.mp3`, { redirect: 'manual' }).then((r) => r.text());
  }
  v6 = await startRedirectord({ etcdUrls: stack.etcd.url, icecastPort: stack.icecast.port, name: 'n1', extraArgs: ['--http-bind', '::1'], noWait: true });
  port6 = v6.httpPort;
  await waitFor('redirectord on ::1 answers', async () => (await fetch(`http://[::1]:${port6}/status.json`)).ok, { timeoutMs: 10_000 });
  await waitFor('settled fds', () => fdCount(stack.redirectord.pid) < 60);
  base = baseline(stack.redirectord.pid);
});

after(async () => {
  await Promise.all(extra.map((p) => p.stop('SIGKILL')));
  await v6?.stop();
  await stack?.stop();
});

function statusOf(r: RawResult): number | undefined {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(r.data.toString('latin1'));
  return m ? Number(m[1]) : undefined;
}

test('malformed request lines and headers get a 4xx or a close, never a 5xx, a hang or a crash', async () => {
  const cases: (string | Buffer)[] = [
    'GET\r\n\r\n',
    'GET / HTTP/1.1 extra\r\n\r\n',
    ' / HTTP/1.1\r\n\r\n',
    'GET / HTTP/9.9\r\nHost: x\r\n\r\n',
    'G\x00T / HTTP/1.1\r\n\r\n',
    'GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /live.mp3\x00.m3u HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET / HTTP/1.1\r\nNoColon\r\n\r\n',
    'GET / HTTP/1.1\r\n: empty-name\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: x\r\n folded: line\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: x\r\nX: \xff\xfe\x01\r\n\r\n',
    'GET http://evil.example/ HTTP/1.1\r\nHost: evil.example\r\n\r\n',
    'GET /' + 'a'.repeat(10_000) + ' HTTP/1.1\r\nHost: x\r\n\r\n',
    'SOURCE\r\n\r\n',
    'PUT  HTTP/1.0\r\n\r\n',
    'OPTIONS /_stream/live.mp3 HTTP/1.1\r\nContent-Length: -1\r\n\r\n',
    'GET /_stream/live.mp3 HTTP/1.1\r\nHost: x\r\nRange: bytes=999999999999999999999-\r\nConnection: close\r\n\r\n',
    Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, ...randomBytes(64)]),
    randomBytes(2000),
    Buffer.concat([Buffer.from('GET / HTTP/1.1\r\n'), randomBytes(500), Buffer.from('\r\n\r\n')]),
    '\r\n\r\n\r\nGET /status.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
  ];
  // Plus random mutations of a valid head: flipped bytes keep most of the structure intact.
  const valid = Buffer.from('GET /live.mp3.m3u HTTP/1.1\r\nHost: radio.test\r\nIcy-MetaData: 1\r\nConnection: close\r\n\r\n');
  for (let i = 0; i < 60; i++) {
    const b = Buffer.from(valid);
    for (let j = 0; j < 1 + (i % 6); j++) b[Math.floor(Math.random() * (b.length - 4))] = Math.floor(Math.random() * 256);
    cases.push(b);
  }
  const results = await Promise.all(cases.map((c) => rawExchange(port, [c], { timeoutMs: 12_000, endAfterSend: false })));
  const summary = new Map<string, number>();
  results.forEach((r, i) => {
    const status = statusOf(r);
    const key = status === undefined ? (r.closed ? 'closed' : 'open') : String(status);
    summary.set(key, (summary.get(key) ?? 0) + 1);
    const shown = JSON.stringify(String(cases[i]).slice(0, 80));
    assert.ok(r.closed || status !== undefined, `no answer and no close for ${shown}`);
    assert.ok(status === undefined || status < 500, `server error ${status} for ${shown}: ${r.data.toString('latin1').slice(0, 200)}`);
    if (r.data.length > 0) assert.ok(status !== undefined, `non-HTTP answer for ${shown}`);
  });
  assert.ok((summary.get('400') ?? 0) >= 10, `expected 400s, got ${JSON.stringify([...summary])}`);
  assertAlive(stack.redirectord);
});

test('huge heads are refused with 431, by the front door and after a hand-over', async () => {
  const big = 'GET /status.json HTTP/1.1\r\nHost: x\r\nX-Big: ' + 'b'.repeat(20_000) + '\r\n\r\n';
  const manyHeaders = 'GET / HTTP/1.1\r\n' + Array.from({ length: 3000 }, (_, i) => `X-${i}: v`).join('\r\n') + '\r\n\r\n';
  const endless = 'GET / HTTP/1.1\r\nX-Endless: ' + 'e'.repeat(200_000);
  const [a, b, c] = await Promise.all([
    rawExchange(port, [big], { timeoutMs: 5000 }),
    rawExchange(port, [manyHeaders], { timeoutMs: 5000 }),
    rawExchange(port, [endless], { timeoutMs: 5000 }),
  ]);
  for (const r of [a, b, c]) assert.equal(statusOf(r), 431, r.data.toString('latin1').slice(0, 100));
  // A second request on a kept-alive handed-over connection is Node's to parse: same limit.
  const d = await rawExchange(port, ['GET /status.json HTTP/1.1\r\nHost: x\r\n\r\n', big], { timeoutMs: 5000, gapMs: 200 });
  const text = d.data.toString('latin1');
  assert.match(text, /^HTTP\/1\.1 200/);
  assert.match(text, /HTTP\/1\.1 431/);
  assertAlive(stack.redirectord);
});

test('slow heads (slowloris) are cut off by the head timeouts, front door and app alike', async () => {
  const t0 = Date.now();
  const slowFront = Array.from({ length: 20 }, () =>
    rawExchange(port, ['GET / HTTP/1.1\r\n', ...Array.from({ length: 30 }, (_, i) => `X-${i}: y\r\n`)], {
      timeoutMs: 20_000,
      gapMs: 700,
    }),
  );
  // First request complete (handed to the app), the second one dribbles in.
  const slowApp = Array.from({ length: 5 }, () =>
    rawExchange(port, ['GET /status.json HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n', ...Array.from({ length: 30 }, () => 'X: y\r\n')], {
      timeoutMs: 20_000,
      gapMs: 700,
    }),
  );
  // Bare CRs never end a line: the head never completes.
  const noLf = rawExchange(port, ['GET / HTTP/1.1\rHost: x\r\r'], { timeoutMs: 20_000 });
  const front = await Promise.all([...slowFront, noLf]);
  const app = await Promise.all(slowApp);
  const elapsed = Date.now() - t0;
  for (const r of front) assert.ok(r.closed, 'a slow head outlived the front door head timeout');
  for (const r of app) {
    assert.ok(r.closed, 'a slow second head outlived the HTTP headers timeout');
    assert.match(r.data.toString('latin1'), /^HTTP\/1\.1 200/);
  }
  assert.ok(elapsed < 16_000, `slow heads were cut after ${elapsed} ms`);
  assertAlive(stack.redirectord);
});

test('thousands of idle sockets: the pending-head cap evicts the oldest, real clients still get in', async () => {
  const sockets: Socket[] = [];
  const closed = new Set<Socket>();
  try {
    // 2000 idle connections from 8 loopback addresses, each below the per-address limit.
    for (let a = 2; a < 10; a++) {
      const batch = await Promise.all(Array.from({ length: 250 }, () => openSocket(port, `127.0.0.${a}`).catch(() => undefined)));
      for (const s of batch) {
        if (!s) continue;
        s.on('error', () => {});
        s.on('close', () => closed.add(s));
        sockets.push(s);
      }
    }
    assert.ok(sockets.length >= 1990, `only ${sockets.length} sockets connected`);
    // The daemon keeps at most 512 pending heads (+ its own fds) while the flood holds on.
    await waitFor('evictions', () => closed.size >= sockets.length - 520, { timeoutMs: 10_000 });
    assert.ok(fdCount(stack.redirectord.pid) <= base.fds + 512 + 20, `fds ${fdCount(stack.redirectord.pid)}`);
    // A real client during the flood.
    const res = await fetch(`http://127.0.0.1:${port}/status.json`, { signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 200);
    await res.text();

    // One address above its limit (256) gets a short 503 for each extra connection.
    const heavy = await Promise.all(
      Array.from({ length: 300 }, () => rawExchange(port, [], { localAddress: '127.0.0.10', timeoutMs: 3000 })),
    );
    const refused = heavy.filter((r) => statusOf(r) === 503).length;
    assert.ok(refused >= 30, `only ${refused} of 300 connections from one address were refused`);
  } finally {
    for (const s of sockets) s.destroy();
  }
  assertAlive(stack.redirectord);
});

type Transport = 'whole' | 'fragments' | 'half-close';

/** Sends `bytes` one way (whole, 1-2 byte fragments, or whole then a FIN) and collects the answer until the server closes. */
function sendOver(transport: Transport, bytes: Buffer, family: 4 | 6 = 4): Promise<RawResult> {
  return new Promise((resolve) => {
    const sock = connect({ host: family === 6 ? '::1' : '127.0.0.1', port: family === 6 ? port6 : port });
    sock.setNoDelay(true);
    const got: Buffer[] = [];
    const timer = setTimeout(() => sock.destroy(), 15_000);
    sock.on('data', (c: Buffer) => got.push(c));
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(got), closed: true });
    });
    sock.on('connect', async () => {
      if (transport !== 'fragments') {
        if (transport === 'half-close') sock.end(bytes);
        else sock.write(bytes);
        return;
      }
      for (let i = 0; i < bytes.length && !sock.destroyed; ) {
        const n = 1 + (i % 2);
        sock.write(bytes.subarray(i, i + n));
        i += n;
        await new Promise((r) => setImmediate(r));
      }
    });
  });
}

test('the same inputs over varied transports: fragments, half-closes, IPv4 and IPv6, clients that never read', async () => {
  const inputs = [
    'GET /live.mp3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    'GET /live.mp3 HTTP/1.1\r\nHost: x\r\n\r\nGET /live.mp3.m3u HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    'OPTIONS /_stream/live.mp3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    'GET /_stream/live.mp3 HTTP/1.0\r\n\r\n',
    'GET http://evil.example/live.mp3 HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n',
    'GET /status.json HTTP/1.1\r\nHost: x\r\n\r\nGET http://evil.example/_stream/live.mp3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    'SOURCE /live.mp3 HTTP/1.0\r\nAuthorization: Basic c291cmNlOng=\r\n\r\n',
    'GET /admin/stats HTTP/1.1\r\nHost: x\r\n\r\n',
    '\r\n\r\nGET /status.json HTTP/1.0\r\n\r\n',
    `GET / HTTP/1.1\r\nX: ${'y'.repeat(17_000)}\r\n\r\n`,
  ].map((t) => Buffer.from(t, 'latin1'));
  inputs.push(randomBytes(300), Buffer.concat([Buffer.from('GET / HTTP/1.1\r\n'), randomBytes(200), Buffer.from('\r\n\r\n')]));
  const runs: Promise<void>[] = [];
  let tried = 0;
  for (const transport of ['whole', 'fragments', 'half-close'] as const) {
    for (const family of [4, 6] as const) {
      for (const input of inputs) {
        tried++;
        runs.push(
          sendOver(transport, input, family).then((r) => {
            const shown = `${transport} IPv${family} ${JSON.stringify(input.toString('latin1').slice(0, 60))}`;
            const status = statusOf(r);
            if (r.data.length > 0) assert.ok(status !== undefined, `non-HTTP answer for ${shown}`);
            // 404 from Icecast for the stream without a source, 401 from Icecast for the source.
            assert.ok(status === undefined || status < 500, `${status} for ${shown}: ${r.data.toString('latin1').slice(0, 200)}`);
            assert.doesNotMatch(r.data.toString('latin1'), /evil\.example/i, shown);
          }),
        );
      }
    }
  }
  // Clients that pipeline requests and never read what they are sent: the daemon drops them
  // (send timeout), which the descriptor count shows while they are still open here.
  const neverRead: Socket[] = [];
  for (let i = 0; i < 8; i++) {
    const s = connect({ host: '127.0.0.1', port });
    s.on('error', () => {});
    s.pause();
    s.write('OPTIONS /_stream/live.mp3 HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(5000));
    neverRead.push(s);
    tried++;
  }
  await Promise.all(runs);
  try {
    await waitNearBaseline(stack.redirectord.pid, base, 30_000);
  } finally {
    for (const s of neverRead) s.destroy();
  }
  assertAlive(v6, 'redirectord on ::1');
  console.log(`# ${tried} inputs over ${inputs.length} payloads x 3 transports x 2 families, plus 8 clients that never read`);
  assertAlive(stack.redirectord);
});

test('pipelined garbage after a valid request does not leak into another request', async () => {
  const r1 = await rawExchange(
    port,
    [`GET /status.json HTTP/1.1\r\nHost: x\r\n\r\n`, Buffer.concat([randomBytes(300), Buffer.from('\r\n\r\n')])],
    { timeoutMs: 6000 },
  );
  const t1 = r1.data.toString('latin1');
  assert.match(t1, /^HTTP\/1\.1 200/);
  assert.match(t1, /HTTP\/1\.1 400/);
  // A source request pipelined behind a kept-alive redirect is refused, never proxied to
  // Icecast (no 401 challenge, 100 or 200 from it).
  const r2 = await rawExchange(port, ['GET /live.mp3 HTTP/1.1\r\nHost: x\r\n\r\nSOURCE /live.mp3 HTTP/1.0\r\n\r\n' + 'x'.repeat(5000)], {
    timeoutMs: 6000,
  });
  const t2 = r2.data.toString('latin1');
  assert.match(t2, /^HTTP\/1\.1 302[^]*\r\n\r\nHTTP\/1\.[01] 400 /, t2);
  assert.doesNotMatch(t2, /HTTP\/1\.[01] (200|401|100)/, t2);
  assert.ok(r2.closed);
  // Behind a redirect that closes, nothing is parsed at all.
  const r2b = await rawExchange(port, ['GET /live.mp3 HTTP/1.0\r\n\r\nSOURCE /live.mp3 HTTP/1.0\r\n\r\n' + 'x'.repeat(5000)], {
    timeoutMs: 6000,
  });
  assert.match(r2b.data.toString('latin1'), /^HTTP\/1\.1 302 [^]*\r\n\r\n$/);
  assert.ok(r2b.closed);
  // A stream request followed by junk: the proxy answers from Icecast and ignores the rest.
  const r3 = await rawExchange(port, ['GET /_stream/live.mp3 HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /admin/stats HTTP/1.1\r\n\r\n', randomBytes(5000)], {
    timeoutMs: 6000,
    gapMs: 50,
  });
  const t3 = r3.data.toString('latin1');
  assert.match(t3, /^HTTP\/1\.[01] 404/, t3.slice(0, 200)); // no source yet: Icecast's 404
  assert.doesNotMatch(t3, /icestats|<\?xml/);
  assertAlive(stack.redirectord);
});

test('mount paths with "..", encoded slashes, NUL bytes and admin tricks never reach Icecast admin or files', async () => {
  const paths = [
    '/_stream/../admin/stats',
    '/_stream/..%2fadmin%2fstats',
    '/_stream/%2e%2e/admin/stats',
    '/_stream/live.mp3/../../admin/stats',
    '/_stream//admin/stats',
    '/_stream/admin/stats',
    '/_stream/admin/listclients?mount=/live.mp3',
    '/_stream/%61dmin/stats',
    '/_stream/live.mp3%00',
    '/_stream/live.mp3%2f..%2f..%2fetc%2fpasswd',
    '/_stream/../../../../etc/passwd',
    '/_stream/.%2e/.%2e/etc/passwd',
    '/_stream/live.mp3;/admin/stats',
    '/_stream/live.mp3\\..\\admin\\stats',
    '/../admin/stats',
    '/%2e%2e/admin/stats',
    '/admin/../admin/stats',
    '/admin/%73tats',
    '/admin/stats%00',
    '/ADMIN/stats',
    '//admin/stats',
    '/live.mp3/../admin/stats',
    '/live.mp3%00.m3u',
    '/live.mp3%2f..%2f..%2fadmin.m3u',
  ];
  for (const p of paths) {
    const r = await rawExchange(port, [`GET ${p} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWRtaW46YWRtaW4=\r\nConnection: close\r\n\r\n`], {
      timeoutMs: 5000,
    });
    const text = r.data.toString('latin1');
    const status = statusOf(r);
    assert.ok(status !== undefined && [400, 403, 404, 405].includes(status), `${p} answered ${text.slice(0, 120)}`);
    assert.doesNotMatch(text, /icestats|<\?xml|root:x:0/, p);
  }
  // A raw NUL byte inside the request-target is not HTTP at all.
  const nul = await rawExchange(port, [Buffer.from('GET /_stream/live.mp3\x00/../admin/stats HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1')]);
  assert.equal(statusOf(nul), 400);
  assertAlive(stack.redirectord);
});

test('a burst of random and mutated DNS packets at the daemon; valid queries still answered (UDP and TCP)', async () => {
  const dnsPort = stack.redirectord.dnsPort;
  const query = (id: number, name = 'radio.test') =>
    dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name, class: 'IN' }] });
  const udp = createSocket('udp4');
  let replies = 0;
  udp.on('message', () => replies++);
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
  const valid = query(7);
  const packets: Buffer[] = [];
  for (let i = 0; i < 1500; i++) packets.push(randomBytes(1 + Math.floor(Math.random() * 600)));
  for (let i = 0; i < 1500; i++) {
    const b = Buffer.from(valid);
    for (let j = 0; j < 1 + (i % 4); j++) b[Math.floor(Math.random() * b.length)] = Math.floor(Math.random() * 256);
    packets.push(i % 5 === 0 ? b.subarray(0, Math.floor(Math.random() * b.length)) : b);
  }
  for (let i = 0; i < packets.length; i++) {
    udp.send(packets[i]!, dnsPort, '127.0.0.1');
    if (i % 200 === 0) await new Promise((r) => setImmediate(r));
  }
  // TCP: junk with lying length prefixes, then hang up.
  await Promise.all(
    Array.from({ length: 30 }, (_, i) =>
      rawExchange(dnsPort, [i % 2 ? randomBytes(700) : Buffer.concat([Buffer.from([0xff, 0xff]), randomBytes(100)])], {
        timeoutMs: 500,
        endAfterSend: true,
      }),
    ),
  );

  const answer = await new Promise<dnsPacket.Packet>((resolve, reject) => {
    const s = createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      reject(new Error('no UDP answer'));
    }, 3000);
    s.on('message', (m) => {
      const p = dnsPacket.decode(m);
      if (p.id !== 4242) return;
      clearTimeout(timer);
      s.close();
      resolve(p);
    });
    s.send(query(4242), dnsPort, '127.0.0.1');
  });
  assert.equal((answer.flags ?? 0) & 0x0f, 0, 'rcode NOERROR');
  assert.deepEqual(answer.answers?.map((a) => (a as { data: string }).data), ['127.0.0.1']);

  const framed = query(99);
  const tcp = await rawExchange(dnsPort, [Buffer.concat([Buffer.from([framed.length >> 8, framed.length & 0xff]), framed])], {
    timeoutMs: 3000,
    endAfterSend: false,
  });
  const len = tcp.data.readUInt16BE(0);
  const p = dnsPacket.decode(tcp.data.subarray(2, 2 + len));
  assert.equal(p.id, 99);
  assert.equal((p.flags ?? 0) & 0x0f, 0, 'rcode NOERROR');
  udp.close();
  assertAlive(stack.redirectord);
});

test('afterwards: a real source and listener work, fds and RSS are back near baseline', async () => {
  const { username, password } = stack.mounts[0]!;
  const src = ffmpegSource(`icecast://${username}:${password}@127.0.0.1:${port}/live.mp3`);
  extra.push(src);
  const got = await waitFor('listener audio through /_stream', async () => {
    const n = await listen(`http://127.0.0.1:${port}/_stream/live.mp3`, 16_000, 4000);
    return n >= 16_000 ? n : undefined;
  }, { timeoutMs: 20_000, intervalMs: 300 });
  assert.ok(got >= 16_000);
  await src.stop('SIGTERM');
  const now = await waitNearBaseline(stack.redirectord.pid, base);
  console.log(`# baseline fds ${base.fds} rss ${base.rssKb} kB; after ${now.fds} fds, ${now.rssKb} kB`);
  assertAlive(stack.redirectord);
});
