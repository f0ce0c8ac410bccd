import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import dnsPacket from 'dns-packet';
import { waitFor } from '../support/wait.js';
import { assertConventionalExposition } from '../support/exposition.js';
import { startProcess, type Managed } from '../support/processes.js';
import { MASTER_ELECTION_PREFIX, forgottenKey, nodeKey } from '../../src/coordination/keys.js';
import {
  ffmpegSource,
  nodeStatus,
  publishNode,
  radioctl,
  scrape,
  startRedirectord,
  startStack,
  startStatsdSink,
  type StatsdSink,
  type Stack,
} from './hardening-harness.js';

/**
 * Observability of the real redirectord: Prometheus series on --metrics-listen move while a
 * source and a listener stream through the front door; statsd gets the same events with labels
 * folded into readable names; logs are one JSON event per line, rate-limited while etcd is down.
 */

let stack: Stack;
let statsd: StatsdSink;
const procs: Managed[] = [];
let port: number;
let metricsPort: number;
const MOUNT = '/live.mp3';

before(async () => {
  statsd = await startStatsdSink();
  stack = await startStack({
    mountPaths: [MOUNT],
    redirectord: { extraArgs: ['--statsd', `127.0.0.1:${statsd.port}`] },
  });
  port = stack.redirectord.httpPort;
  metricsPort = stack.redirectord.metricsPort;
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  await stack?.stop();
  statsd?.close();
});

const get = (m: Map<string, number>, series: string) => m.get(series) ?? 0;

test('/metrics speaks the text format and answers nothing else', async () => {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const text = await res.text();
  for (const line of text.split('\n').filter(Boolean)) {
    assert.match(line, /^(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? \S+)$/, line);
  }
  assert.match(text, /^# TYPE autoradio_cluster_listeners gauge$/m);
  assertConventionalExposition(text);
  assert.match(text, /^process_resident_memory_bytes \d+$/m);
  assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/`)).status, 404);
  // The public port does not serve it.
  assert.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 404);
});

test('cluster gauges: listeners per node and mount, live nodes, master; totals in status.json and radioctl', async () => {
  await publishNode(stack.client, nodeStatus('n1', stack.icecast.port, { [MOUNT]: 2 }), false);
  await publishNode(stack.client, nodeStatus('n2', stack.icecast.port, { [MOUNT]: 3 }), false);
  const m = await waitFor('listener gauges', async () => {
    const s = await scrape(metricsPort);
    return get(s, `autoradio_cluster_listeners{mount="${MOUNT}",node="n2"}`) === 3 ? s : undefined;
  });
  assert.equal(get(m, `autoradio_cluster_listeners{mount="${MOUNT}",node="n1"}`), 2);
  assert.equal(get(m, 'autoradio_cluster_node_up{node="n1"}'), 1);
  assert.equal(get(m, 'autoradio_cluster_node_up{node="n2"}'), 1);
  assert.equal(get(m, 'autoradio_cluster_master{node="n1"}'), 1);
  assert.equal(m.has('autoradio_cluster_master{node="n2"}'), false);
  assert.equal(get(m, 'autoradio_cluster_mounts'), 1);
  assert.equal(get(m, 'autoradio_etcd_connected'), 1);

  // Cluster-wide totals per mount already exist in status.json and radioctl status: verified here.
  const status = (await (await fetch(`http://127.0.0.1:${port}/status.json`)).json()) as {
    mounts: { path: string; listeners: number }[];
    totals: { listeners: number };
  };
  assert.equal(status.mounts.find((x) => x.path === MOUNT)?.listeners, 5);
  assert.equal(status.totals.listeners, 5);
  const ctl = await radioctl([...stack.etcdArgs, 'status']);
  assert.equal(ctl.code, 0, ctl.stderr);
  assert.match(ctl.stdout, new RegExp(`${MOUNT.replace('.', '\\.')}.*\\b5\\b`));
  const ctlJson = JSON.parse((await radioctl([...stack.etcdArgs, '--json', 'status'])).stdout) as {
    mounts: { path: string; listeners: number }[];
    totals: { listeners: number };
  };
  assert.equal(ctlJson.mounts.find((x) => x.path === MOUNT)?.listeners, 5);
  assert.equal(ctlJson.totals.listeners, 5);
});

test('a node that left stays as node_up 0 until forget-node; then no series and no status row names it', async () => {
  const lease = stack.client.lease(30);
  await lease.put(nodeKey('gone')).value(JSON.stringify(nodeStatus('gone', stack.icecast.port, { [MOUNT]: 1 })));
  await waitFor('gone up', async () => get(await scrape(metricsPort), 'autoradio_cluster_node_up{node="gone"}') === 1);
  await lease.revoke();
  await waitFor('gone reported down', async () => {
    const m = await scrape(metricsPort);
    return m.get('autoradio_cluster_node_up{node="gone"}') === 0 && !m.has(`autoradio_cluster_listeners{mount="${MOUNT}",node="gone"}`);
  });
  const r = await radioctl([...stack.etcdArgs, 'forget-node', 'gone']);
  assert.equal(r.code, 0, r.stderr);
  await waitFor('no series names the forgotten node', async () => ![...(await scrape(metricsPort)).keys()].some((k) => k.includes('node="gone"')));
  const status = (await (await fetch(`http://127.0.0.1:${port}/status.json`)).json()) as { nodes: { name: string }[] };
  assert.deepEqual(status.nodes.filter((n) => n.name === 'gone'), []);
  await stack.client.delete().key(forgottenKey('gone'));
});

test('streaming moves the series: source and listener bytes, connections, redirects, DNS rcodes', async () => {
  const before = await scrape(metricsPort);
  const { username, password } = stack.mounts[0]!;
  procs.push(ffmpegSource(`icecast://${username}:${password}@127.0.0.1:${port}${MOUNT}`));
  await waitFor('source connected', async () => get(await scrape(metricsPort), 'autoradio_front_door_sources') === 1, { timeoutMs: 10_000 });
  // A curl listener through the front door's /_stream proxy.
  const curl = startProcess('curl', ['-s', '-o', '/dev/null', '--max-time', '60', `http://127.0.0.1:${port}/_stream${MOUNT}`]);
  procs.push(curl);
  await waitFor('listener connected', async () => get(await scrape(metricsPort), 'autoradio_front_door_streams') === 1, { timeoutMs: 10_000 });
  const s1 = await scrape(metricsPort);
  const inKey = 'autoradio_front_door_bytes_total{direction="in",kind="source"}';
  const outKey = 'autoradio_front_door_bytes_total{direction="out",kind="stream"}';
  const s2 = await waitFor('bytes flowing', async () => {
    const s = await scrape(metricsPort);
    return get(s, inKey) > get(s1, inKey) + 8000 && get(s, outKey) > get(s1, outKey) + 8000 ? s : undefined;
  }, { timeoutMs: 10_000, intervalMs: 500 });
  assert.ok(get(s2, 'autoradio_front_door_source_total') >= get(before, 'autoradio_front_door_source_total') + 1);
  assert.ok(get(s2, 'autoradio_front_door_stream_total') >= 1);

  // Listener redirects, labelled by the chosen node.
  for (let i = 0; i < 4; i++) {
    const r = await fetch(`http://127.0.0.1:${port}${MOUNT}`, { redirect: 'manual' });
    assert.equal(r.status, 302);
    await r.text();
  }
  await fetch(`http://127.0.0.1:${port}${MOUNT}.m3u`).then((r) => r.text());
  const s3 = await scrape(metricsPort);
  const redirects = get(s3, 'autoradio_http_redirect_total{node="n1"}') + get(s3, 'autoradio_http_redirect_total{node="n2"}');
  assert.equal(redirects, 4);
  assert.equal(get(s3, 'autoradio_http_playlist_total{format="m3u"}'), 1);

  // DNS: one answered and one NXDOMAIN query, counted by rcode once the server flushes (1 s).
  const udp = createSocket('udp4');
  for (const [id, name] of [[1, 'radio.test'], [2, 'nope.radio.test']] as const) {
    udp.send(dnsPacket.encode({ type: 'query', id, questions: [{ type: 'A', name, class: 'IN' }] }), stack.redirectord.dnsPort, '127.0.0.1');
  }
  await waitFor('DNS rcodes counted', async () => {
    const s = await scrape(metricsPort);
    return get(s, 'autoradio_dns_rcode_total{rcode="NOERROR"}') >= 1 && get(s, 'autoradio_dns_rcode_total{rcode="NXDOMAIN"}') >= 1;
  });
  udp.close();

  // statsd got the same events, labels folded into the name.
  await waitFor('statsd names', () =>
    statsd.lines.some((p) => /^autoradio\.redirectord\.n1\.http\.redirect\.n[12]:1\|c/.test(p)) &&
    statsd.lines.some((p) => /^autoradio\.redirectord\.n1\.front_door\.bytes\.source\.in:\d+\|c/.test(p)) &&
    statsd.lines.some((p) => /^autoradio\.redirectord\.n1\.dns\.rcode\.NXDOMAIN:\d+\|c/.test(p)),
  );

  await curl.stop('SIGTERM');
  await waitFor('listener gone', async () => get(await scrape(metricsPort), 'autoradio_front_door_streams') === 0);
});

test('a master change is counted; cluster-wide series leave with the master role (exported once, by the master node)', async () => {
  const before = get(await scrape(metricsPort), 'autoradio_master_changes_total');
  await stack.client.delete().prefix(MASTER_ELECTION_PREFIX);
  // n2's Icecast is elsewhere (nothing listens there): sources must leave the old master.
  await publishNode(stack.client, nodeStatus('n2', 1, { [MOUNT]: 3 }), true);
  const s = await waitFor('master change seen', async () => {
    const m = await scrape(metricsPort);
    return get(m, 'autoradio_master_changes_total') >= before + 1 ? m : undefined;
  });
  // This redirectord runs on n1, no longer master: n2's redirectord answers for the cluster now.
  const clusterSeries = [...s.keys()].filter((k) => k.startsWith('autoradio_cluster_'));
  assert.deepEqual(clusterSeries, []);
  // Its own link to etcd is still its own to report.
  assert.equal(get(s, 'autoradio_etcd_connected'), 1);
  // The MP3 source tied to the old master is held and re-pointed at the new one, not closed.
  await waitFor('old source held', async () => get(await scrape(metricsPort), 'autoradio_source_proxy_hold_total') >= 1);
});

test('logs are JSON lines without secrets; with etcd down the warnings are rate-limited and the gauges say so', async () => {
  for (const line of stack.redirectord.lines) {
    const e = JSON.parse(line) as { level?: number; time?: string; msg?: string };
    assert.equal(typeof e.level, 'number', line);
    assert.equal(typeof e.time, 'string', line);
  }
  assert.ok(!stack.redirectord.lines.some((l) => l.includes(stack.mounts[0]!.password)));

  // Count warnings over the first 5 s of the outage (the etcd client retries several times a second).
  const start = stack.redirectord.lines.length;
  const t0 = Date.now();
  await stack.etcd.process.stop('SIGKILL');
  const down = await waitFor('etcd_connected 0', async () => {
    const m = await scrape(metricsPort);
    return get(m, 'autoradio_etcd_connected') === 0 ? m : undefined;
  }, { timeoutMs: 15_000, intervalMs: 200 });
  assert.ok(get(down, 'autoradio_etcd_unreachable_total') >= 1);
  await waitFor('5 s of outage', () => Date.now() - t0 >= 5000, { timeoutMs: 7000, intervalMs: 250 });
  const warns = stack.redirectord.lines.slice(start).filter((l) => (JSON.parse(l) as { level: number }).level >= 40);
  console.log(`# warn lines in the first 5 s with etcd down: ${warns.length}`);
  assert.ok(warns.some((l) => l.includes('etcd unreachable')), 'the outage was not logged at all');
  assert.ok(warns.length <= 4, `too many warnings while etcd is down:\n${warns.join('\n')}`);
  // Still serving the last known state.
  const res = await fetch(`http://127.0.0.1:${port}/status.json`);
  assert.equal(res.status, 200);
  assert.match(await res.text(), /"connected":false/);
});

test('--metrics-listen off serves nothing; a taken port does not stop the daemon', async () => {
  const off = await startRedirectord({
    etcdUrls: 'http://127.0.0.1:1',
    icecastPort: stack.icecast.port,
    name: 'n9',
    extraArgs: ['--metrics-listen', 'off'],
    noWait: true,
  });
  try {
    await assert.rejects(fetch(`http://127.0.0.1:${off.metricsPort}/metrics`));
  } finally {
    await off.stop();
  }
  // Same port as the running daemon's metrics: logged, and the front door still answers.
  const clash = await startRedirectord({
    etcdUrls: 'http://127.0.0.1:1',
    icecastPort: stack.icecast.port,
    name: 'n8',
    extraArgs: ['--metrics-listen', `127.0.0.1:${metricsPort}`],
    noWait: true,
  });
  try {
    assert.ok(clash.lines.some((l) => l.includes('Prometheus metrics disabled')));
    assert.equal((await fetch(`http://127.0.0.1:${clash.httpPort}/status.json`)).status, 200);
  } finally {
    await clash.stop();
  }
});
