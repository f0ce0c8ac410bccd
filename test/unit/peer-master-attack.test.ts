import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { MasterReport } from '../../src/coordination/master-report.js';
import { choosePeerMaster, masterToFollow } from '../../src/coordination/peer-master-choice.js';
import { waitFor } from '../support/wait.js';
import { makeApp, node, state } from '../support/http-fixtures.js';
import { lookupOfN1, SettableView } from '../support/peer-master-fixtures.js';

/**
 * Peers that misbehave, through the real HTTP path (each peer is its own loopback address on one
 * port, as peers are on one port across the cluster), and the lookup's own edges.
 */

const n1 = node('n1', { addresses: ['127.0.0.1'], icecastPort: 8000 });
const honest = node('n2', { addresses: ['127.0.0.2'], icecastPort: 8000 });
const hostile = node('n3', { addresses: ['127.0.0.3'], icecastPort: 8000 });
const cutView = state([n1, honest, hostile], [], { connected: false, revision: '100' });

function report(over: Partial<MasterReport> = {}): string {
  return JSON.stringify({ node: 'n2', connected: true, revision: '120', master: { name: 'n2', addresses: ['127.0.0.2'], icecastPort: 8000 }, ...over });
}

/** Two peers on one port: `honestAnswer` at 127.0.0.2, `hostileHandler` at 127.0.0.3. */
async function peers(hostileHandler: http.RequestListener, honestAnswer: () => string = () => report()) {
  const sockets = new Set<Socket>();
  const track = (server: http.Server) => server.on('connection', (s: Socket) => (sockets.add(s), s.on('close', () => sockets.delete(s))));
  const good = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(honestAnswer()));
  track(good);
  good.listen(0, '127.0.0.2');
  await new Promise((r) => good.once('listening', r));
  const port = (good.address() as AddressInfo).port;
  const bad = http.createServer(hostileHandler);
  track(bad);
  bad.listen(port, '127.0.0.3');
  await new Promise((r) => bad.once('listening', r));
  return {
    port,
    sockets,
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([new Promise((r) => good.close(r)), new Promise((r) => bad.close(r))]);
    },
  };
}

const hostileCases: [string, http.RequestListener][] = [
  ['drips one byte at a time and never ends', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const t = setInterval(() => res.write(' '), 50);
    res.on('close', () => clearInterval(t));
  }],
  ['never answers at all', () => {}],
  ['sends a body over the size limit', (_req, res) => res.end(`{"node":"n3","pad":"${'x'.repeat(100_000)}"}`)],
  ['redirects to an address of its choosing', (_req, res) => res.writeHead(302, { location: 'http://127.0.0.2:1/_master' }).end()],
  ['resets the connection mid-body', (req, res) => {
    res.writeHead(200, { 'content-length': '500' });
    res.write('{"node":"n3",');
    setTimeout(() => req.socket.destroy(), 20);
  }],
  ['answers 200 with HTML', (_req, res) => res.end('<html>hello</html>')],
  ['claims a master it made up, with a huge revision', (_req, res) =>
    res.end(report({ node: 'n3', revision: '18446744073709551615', master: { name: 'evil', addresses: ['198.51.100.7'], icecastPort: 8000 } }))],
];

for (const [name, handler] of hostileCases) {
  test(`a peer that ${name} neither blocks the lookup nor is believed`, { timeout: 20_000 }, async () => {
    const p = await peers(handler);
    const view = new SettableView(cutView);
    const lookup = lookupOfN1(view, { httpPort: p.port });
    lookup.start();
    try {
      await waitFor('following the honest peer', () => lookup.current()?.master?.name === 'n2', { timeoutMs: 5000, intervalMs: 20 });
      assert.equal(lookup.current()?.from, 'n2');
      // Rounds go on (the bad peer is given up on by its timeout, not waited for): the honest
      // peer's next answer is taken.
      const before = lookup.current();
      await waitFor('a later round confirmed it', () => lookup.current() !== before, { timeoutMs: 5000, intervalMs: 20 });
      assert.equal(lookup.current()?.master?.name, 'n2');
      // No connection piles up towards the bad peer: each round's is aborted.
      assert.ok(p.sockets.size <= 4, `${p.sockets.size} connections open`);
    } finally {
      lookup.stop();
      await p.close();
    }
  });
}

test('a lost quorum everywhere: no peer is in touch with etcd, so nobody is believed and the fenced master keeps its sources', async () => {
  const view = new SettableView(cutView);
  let asked = 0;
  const lookup = lookupOfN1(view, { ask: async (address) => {
    asked++;
    return address === '127.0.0.2'
      ? report({ connected: false, revision: '500', master: null })
      : report({ node: 'n3', connected: false, revision: '600', master: { name: 'n3', addresses: ['127.0.0.3'], icecastPort: 8000 } });
  } });
  lookup.start();
  try {
    await waitFor('three rounds', () => asked >= 6, { timeoutMs: 5000, intervalMs: 20 });
    assert.equal(lookup.current(), undefined);
    assert.equal(masterToFollow(view.current(), lookup.current())?.name, 'n1', 'the last known master: this node');
  } finally {
    lookup.stop();
  }
});

test('a round that comes back after etcd answered again, or after stop(), changes nothing', async () => {
  const view = new SettableView(cutView);
  const pending: ((body: string) => void)[] = [];
  let asked = 0;
  const lookup = lookupOfN1(view, { ask: (_address) => {
    asked++;
    return new Promise<string>((resolve) => pending.push(resolve));
  } });
  let changes = 0;
  lookup.onChange(() => changes++);
  lookup.start();
  await waitFor('a round out', () => pending.length === 2, { timeoutMs: 2000, intervalMs: 5 });
  view.set({ ...cutView, connected: true });
  for (const resolve of pending.splice(0)) resolve(report());
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(lookup.current(), undefined, 'etcd answers: the late round is not followed');
  assert.equal(changes, 0);
  // Cut again, while nothing is out: asks at once, follows; then stop() in the middle of a round.
  view.set(cutView);
  await waitFor('asking again', () => pending.length === 2, { timeoutMs: 2000, intervalMs: 5 });
  for (const resolve of pending.splice(0)) resolve(report());
  await waitFor('following', () => lookup.current()?.master?.name === 'n2', { timeoutMs: 2000, intervalMs: 5 });
  await waitFor('next round out', () => pending.length === 2, { timeoutMs: 2000, intervalMs: 5 });
  lookup.stop();
  const changesAtStop = changes;
  const askedAtStop = asked;
  for (const resolve of pending.splice(0)) resolve(report({ revision: '999', master: null }));
  await new Promise((r) => setTimeout(r, 700));
  assert.equal(lookup.current(), undefined);
  assert.equal(changes, changesAtStop, 'no change reported after stop()');
  assert.equal(asked, askedAtStop, 'no question after stop()');
});

test('a view flapping between cut and connected never starts two rounds at once', async () => {
  const view = new SettableView({ ...cutView, connected: true });
  let out = 0;
  let most = 0;
  const lookup = lookupOfN1(view, { ask: async () => {
    out++;
    most = Math.max(most, out);
    await new Promise((r) => setTimeout(r, 30));
    out--;
    return report();
  } });
  lookup.start();
  try {
    for (let i = 0; i < 40; i++) {
      view.set(i % 2 === 0 ? cutView : { ...cutView, connected: true });
      await new Promise((r) => setImmediate(r));
    }
    view.set(cutView);
    await waitFor('following after the flapping', () => lookup.current()?.master?.name === 'n2', { timeoutMs: 3000, intervalMs: 10 });
    assert.ok(most <= 2, `${most} questions out at once (one round asks the 2 peers)`);
  } finally {
    lookup.stop();
  }
});

test('/_master answers GET and HEAD alone, whatever the query, and carries no secret', async () => {
  const s = state([n1, honest], [], { icecastAdminPassword: 'hush-admin' });
  const { app } = await makeApp(s, { nodeName: 'n2' });
  try {
    const withQuery = await app.inject({ method: 'GET', url: '/_master?x=%00&node=evil' });
    assert.equal(withQuery.statusCode, 200);
    assert.equal(JSON.parse(withQuery.body).node, 'n2');
    for (const secret of ['hush-admin', 'password']) assert.ok(!withQuery.body.includes(secret), secret);
    assert.equal((await app.inject({ method: 'HEAD', url: '/_master' })).statusCode, 200);
    for (const method of ['POST', 'PUT', 'DELETE'] as const) {
      assert.equal((await app.inject({ method, url: '/_master', payload: '{}' })).statusCode, 404, method);
    }
  } finally {
    await app.close();
  }
});

test("a peer in touch with etcd but behind this node's own last view (a lagging watch) is not believed over it", () => {
  // The own view, cut at revision 100, already saw n3 elected; n2 still reports n2 at 90.
  const known = { ...cutView, master: { name: 'n3', addresses: ['127.0.0.3'], icecastPort: 8000 } };
  const stale = { asked: 'n2', report: JSON.parse(report({ revision: '90' })) as MasterReport };
  assert.equal(choosePeerMaster([stale], known), undefined);
  assert.equal(masterToFollow(known, choosePeerMaster([stale], known))?.name, 'n3', 'the own, fresher view stands');
  // As fresh as the own view, or fresher: believed.
  const same = { asked: 'n2', report: JSON.parse(report({ revision: '100' })) as MasterReport };
  assert.equal(choosePeerMaster([same], known)?.master?.name, 'n2');
});

test('a followed master is not traded for an older report while it is still followed', async () => {
  const view = new SettableView(cutView);
  let answers: Record<string, string> = {
    '127.0.0.2': report({ revision: '130', master: { name: 'n3', addresses: ['127.0.0.3'], icecastPort: 8000 } }),
    '127.0.0.3': report({ node: 'n3', revision: '130', master: { name: 'n3', addresses: ['127.0.0.3'], icecastPort: 8000 } }),
  };
  let rounds = 0;
  const lookup = lookupOfN1(view, {
    ask: async (address) => {
      if (address === '127.0.0.2') rounds++;
      const a = answers[address];
      if (a === undefined) throw new Error('timeout');
      return a;
    },
  });
  let changes = 0;
  lookup.onChange(() => changes++);
  lookup.start();
  try {
    await waitFor('following n3', () => lookup.current()?.master?.name === 'n3', { timeoutMs: 3000, intervalMs: 10 });
    // n3 stops answering; n2's watch lags behind what it said a moment ago.
    answers = { '127.0.0.2': report({ revision: '120' }) };
    const from = rounds;
    await waitFor('two more rounds', () => rounds >= from + 2, { timeoutMs: 3000, intervalMs: 10 });
    assert.equal(lookup.current()?.master?.name, 'n3');
    assert.equal(changes, 1);
  } finally {
    lookup.stop();
  }
});

test('a wall clock stepped back an hour does not keep a master followed once the peers stop answering', async () => {
  const view = new SettableView(cutView);
  let up = true;
  const lookup = lookupOfN1(view, {
    ask: async () => {
      if (!up) throw new Error('timeout');
      return report();
    },
  });
  const realNow = Date.now;
  lookup.start();
  try {
    await waitFor('following n2', () => lookup.current()?.master?.name === 'n2', { timeoutMs: 3000, intervalMs: 10 });
    // NTP, an operator or a VM resume steps the clock back; the peers go quiet at once.
    Date.now = () => realNow() - 3_600_000;
    up = false;
    await waitFor('back to the own view', () => lookup.current() === undefined, { timeoutMs: 6000, intervalMs: 20 });
  } finally {
    Date.now = realNow;
    lookup.stop();
  }
});
