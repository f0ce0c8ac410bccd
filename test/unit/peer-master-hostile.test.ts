import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { pino } from 'pino';
import type { ClusterState } from '../../src/coordination/cluster-state.js';
import type { MasterReport } from '../../src/coordination/master-report.js';
import { PeerMasterLookup } from '../../src/coordination/peer-master-lookup.js';
import { PeerInformedView } from '../../src/coordination/peer-informed-view.js';
import { waitFor } from '../support/wait.js';
import { SettableView } from '../support/peer-master-fixtures.js';
import { makeApp, mount, node, RecordingMetrics, SECRET, state } from '../support/http-fixtures.js';

/*
 * Hostile or broken peers, through the real ask path (fetch to a real server): n2 and n3 live at
 * 127.0.0.2 and 127.0.0.3 on one port, as peers' front doors share a port.
 */
const n1 = node('n1', { addresses: ['127.0.0.1'], icecastPort: 8000 });
const n2 = node('n2', { addresses: ['127.0.0.2'], icecastPort: 8000 });
const n3 = node('n3', { addresses: ['127.0.0.3'], icecastPort: 8000 });
const cutView = state([n1, n2, n3], [], { connected: false, revision: '100' });

function report(over: Partial<MasterReport> = {}): string {
  return JSON.stringify({ node: 'n2', connected: true, revision: '120', master: { name: 'n2', addresses: ['127.0.0.2'], icecastPort: 8000 }, ...over });
}

interface Peer {
  requests: number;
  open: number;
  maxOpen: number;
  close(): Promise<void>;
}

async function listen(host: string, port: number, handler: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<{ server: http.Server; peer: Peer }> {
  const sockets = new Set<Socket>();
  const peer: Peer = {
    requests: 0,
    open: 0,
    maxOpen: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = http.createServer((req, res) => {
    peer.requests++;
    handler(req, res);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    peer.open++;
    peer.maxOpen = Math.max(peer.maxOpen, peer.open);
    s.on('close', () => {
      sockets.delete(s);
      peer.open--;
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return { server, peer };
}

/** n2 honest (or absent), n3 as given, on one port. */
async function peers(n3Handler: (req: http.IncomingMessage, res: http.ServerResponse) => void, n2Handler?: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  for (let attempt = 0; ; attempt++) {
    const a = await listen('127.0.0.3', 0, n3Handler);
    const port = (a.server.address() as AddressInfo).port;
    if (!n2Handler) return { port, n3: a.peer, n2: undefined };
    try {
      const b = await listen('127.0.0.2', port, n2Handler);
      return { port, n3: a.peer, n2: b.peer };
    } catch (err) {
      await a.peer.close();
      if (attempt > 5) throw err;
    }
  }
}

function lookupOf(view: SettableView, port: number): PeerMasterLookup {
  return new PeerMasterLookup({ view, nodeName: 'n1', ownAddresses: ['127.0.0.1'], httpPort: port, log: pino({ level: 'silent' }), metrics: new RecordingMetrics() });
}

const hostile: Record<string, (req: http.IncomingMessage, res: http.ServerResponse) => void> = {
  'never answers': () => {},
  'trickles a byte at a time, never ending': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const body = report({ node: 'n3' });
    let i = 0;
    const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write(body[i++ % body.length] ?? ' ')), 20);
    res.on('close', () => clearInterval(t));
  },
  'sends a huge body': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const pump = () => {
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once('drain', pump);
    };
    pump();
  },
  'redirects to a believable report': (_req, res) => {
    res.writeHead(302, { location: 'http://127.0.0.1:1/_master' }).end();
  },
  'resets mid-body': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '500' });
    res.write(report({ node: 'n3' }).slice(0, 30));
    setTimeout(() => res.socket?.resetAndDestroy(), 10);
  },
  'answers 200 with html': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<html>hello</html>');
  },
  'answers chunked garbage': (_req, res) => {
    res.socket?.end('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n');
  },
  'lies about its name': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(report({ node: 'n2' }));
  },
  'is cut too but says so': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(report({ node: 'n3', connected: false, revision: '999' }));
  },
};

for (const [what, handler] of Object.entries(hostile)) {
  // 'never answers' found a socket still open 3 s after stop() with a pooled fetch: each question
  // now has its own connection, destroyed when it is given up or the lookup stops.
  test(`a peer that ${what} is never followed, never blocks the rounds, and its connections are closed`, async () => {
    const { port, n3 } = await peers(handler);
    const view = new SettableView(cutView);
    const lookup = lookupOf(view, port);
    let changes = 0;
    lookup.onChange(() => changes++);
    lookup.start();
    try {
      // Rounds go on: a round waits at most for the ask timeout.
      await waitFor('four rounds asked', () => n3.requests >= 4, { timeoutMs: 8000, intervalMs: 20 });
      assert.equal(lookup.current(), undefined);
      assert.equal(changes, 0);
      assert.ok(n3.maxOpen <= 2, `at most ${n3.maxOpen} connections open at once`);
    } finally {
      lookup.stop();
    }
    await waitFor('every connection to the hostile peer closed', () => n3.open === 0, { timeoutMs: 3000, intervalMs: 20 });
    const after = n3.requests;
    // Asserting an absence needs a span of time: two round periods.
    await new Promise((r) => setTimeout(r, 1300));
    assert.equal(n3.requests, after, 'no round after stop()');
    await n3.close();
  });
}

test('an honest peer is followed through the real ask path while another hangs, and rounds keep coming', async () => {
  const { port, n2, n3 } = await peers(hostile['trickles a byte at a time, never ending']!, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(report());
  });
  const view = new SettableView(cutView);
  const lookup = lookupOf(view, port);
  lookup.start();
  try {
    await waitFor('following n2', () => lookup.current()?.master?.name === 'n2', { timeoutMs: 3000, intervalMs: 20 });
    const before = n2!.requests;
    await waitFor('three more rounds', () => n2!.requests >= before + 3, { timeoutMs: 6000, intervalMs: 20 });
    assert.equal(lookup.current()?.master?.name, 'n2');
  } finally {
    lookup.stop();
  }
  assert.equal(lookup.current(), undefined, 'stopped: nothing followed');
  await n2!.close();
  await n3.close();
});

test('IPv6 peers are asked at [address]:port', async (t) => {
  const v6n2 = node('n2', { addresses: ['::1'], icecastPort: 8000 });
  let srv: Awaited<ReturnType<typeof listen>>;
  try {
    srv = await listen('::1', 0, (_req, res) => res.writeHead(200).end(report({ master: { name: 'n2', addresses: ['::1'], icecastPort: 8000 } })));
  } catch {
    t.skip('no IPv6 loopback');
    return;
  }
  const view = new SettableView(state([node('n1', { addresses: ['::1'] }), v6n2], [], { connected: false, revision: '100' }));
  const lookup = new PeerMasterLookup({ view, nodeName: 'n1', ownAddresses: ['::1'], httpPort: (srv.server.address() as AddressInfo).port, log: pino({ level: 'silent' }), metrics: new RecordingMetrics() });
  lookup.start();
  try {
    await waitFor('following n2 over IPv6', () => lookup.current()?.master?.name === 'n2', { timeoutMs: 3000, intervalMs: 20 });
  } finally {
    lookup.stop();
    await srv.peer.close();
  }
});

/** An ask the test answers by hand. */
function manualAsk() {
  const pending: Array<{ address: string; resolve: (s: string) => void; reject: (e: Error) => void }> = [];
  const ask = (address: string) => new Promise<string>((resolve, reject) => pending.push({ address, resolve, reject }));
  return { pending, ask };
}

function manualLookup(view: SettableView, ask: (a: string, p: number) => Promise<string>) {
  return new PeerMasterLookup({ view, nodeName: 'n1', ownAddresses: ['127.0.0.1'], httpPort: 80, log: pino({ level: 'silent' }), metrics: new RecordingMetrics(), ask });
}

test("a round's answer that comes after etcd answered again is not adopted", async () => {
  const view = new SettableView(cutView);
  const { pending, ask } = manualAsk();
  const lookup = manualLookup(view, ask);
  let changes = 0;
  lookup.onChange(() => changes++);
  lookup.start();
  try {
    await waitFor('a round out', () => pending.length === 2, { timeoutMs: 2000, intervalMs: 5 });
    view.set({ ...cutView, connected: true });
    for (const p of pending.splice(0)) p.resolve(report({ node: p.address === '127.0.0.2' ? 'n2' : 'n3' }));
    await new Promise((r) => setImmediate(r));
    assert.equal(lookup.current(), undefined);
    assert.equal(changes, 0);
  } finally {
    lookup.stop();
  }
});

test('stop() during a round: the answer is dropped, no listener is called, nothing is asked again', async () => {
  const view = new SettableView(cutView);
  const { pending, ask } = manualAsk();
  const lookup = manualLookup(view, ask);
  let changes = 0;
  lookup.onChange(() => changes++);
  lookup.start();
  await waitFor('a round out', () => pending.length === 2, { timeoutMs: 2000, intervalMs: 5 });
  lookup.stop();
  for (const p of pending.splice(0)) p.resolve(report({ node: p.address === '127.0.0.2' ? 'n2' : 'n3' }));
  view.set({ ...cutView, connected: true });
  view.set(cutView);
  await new Promise((r) => setTimeout(r, 700));
  assert.equal(pending.length, 0, 'nothing asked after stop()');
  assert.equal(lookup.current(), undefined);
  assert.equal(changes, 0);
});

test('a view flapping between cut and connected never has two rounds out at once', async () => {
  const view = new SettableView(cutView);
  const { pending, ask } = manualAsk();
  let maxOut = 0;
  const lookup = manualLookup(view, (a, p) => {
    const r = ask(a);
    maxOut = Math.max(maxOut, pending.length);
    return r;
  });
  lookup.start();
  try {
    await waitFor('a round out', () => pending.length === 2, { timeoutMs: 2000, intervalMs: 5 });
    for (let i = 0; i < 20; i++) {
      view.set({ ...cutView, connected: true });
      view.set(cutView);
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(maxOut, 2, 'one round (two peers) at a time');
    for (const p of pending.splice(0)) p.resolve(report({ node: p.address === '127.0.0.2' ? 'n2' : 'n3', master: null }));
    await waitFor('following after the flapping', () => lookup.current() !== undefined, { timeoutMs: 2000, intervalMs: 5 });
    // And the rounds go on after it.
    await waitFor('the next round', () => pending.length === 2, { timeoutMs: 2000, intervalMs: 5 });
  } finally {
    lookup.stop();
  }
});

test('a lost quorum cluster-wide: every peer is cut too, nobody is believed, the fenced master stays master in the routing view', async () => {
  const view = new SettableView(cutView);
  const lookup = manualLookup(view, async (address) =>
    report({ node: address === '127.0.0.2' ? 'n2' : 'n3', connected: false, revision: '900', master: { name: 'n2', addresses: ['127.0.0.2'], icecastPort: 8000 } }),
  );
  let asked = 0;
  const counting = new PeerMasterLookup({
    view,
    nodeName: 'n1',
    ownAddresses: ['127.0.0.1'],
    httpPort: 80,
    log: pino({ level: 'silent' }),
    metrics: new RecordingMetrics(),
    ask: async (address) => {
      asked++;
      return report({ node: address === '127.0.0.2' ? 'n2' : 'n3', connected: false, revision: '900' });
    },
  });
  lookup.start();
  counting.start();
  try {
    await waitFor('three rounds', () => asked >= 6, { timeoutMs: 4000, intervalMs: 10 });
    assert.equal(lookup.current(), undefined);
    assert.equal(counting.current(), undefined);
    assert.equal(new PeerInformedView(view, lookup).current().master?.name, 'n1');
  } finally {
    lookup.stop();
    counting.stop();
  }
});

test('GET /_master from outside: HEAD, query strings and other methods leak nothing and change nothing', async () => {
  const { app } = await makeApp(state([n1, n2], [mount('/live')], { icecastAdminPassword: 'hush-admin' } as Partial<ClusterState>), { nodeName: 'n2' });
  try {
    const get = await app.inject({ method: 'GET', url: '/_master?x=1&node=evil' });
    assert.equal(get.statusCode, 200);
    assert.ok(!get.body.includes(SECRET) && !get.body.includes('hush-admin'));
    assert.equal(JSON.parse(get.body).node, 'n2');
    const head = await app.inject({ method: 'HEAD', url: '/_master' });
    assert.equal(head.statusCode, 200);
    assert.equal(head.body, '');
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH'] as const) {
      const res = await app.inject({ method, url: '/_master', payload: report() });
      assert.equal(res.statusCode, 404, method);
    }
  } finally {
    await app.close();
  }
});
