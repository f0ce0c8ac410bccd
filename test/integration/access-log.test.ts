import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../support/wait.js';
import { startProcess, type Managed } from '../support/processes.js';
import { basicAuth, ffmpegSource, nodeStatus, publishNode, radioctl, rawExchange, startStack, type Stack } from './hardening-harness.js';
import { ICECAST_SECRETS_KEY } from '../../src/coordination/keys.js';

/**
 * The real redirectord's --access-log: a listener through /_stream (real Icecast, curl) leaves
 * one line in Icecast's access.log format when it leaves, with its user agent, the bytes it got
 * and its duration; SIGHUP (logrotate's postrotate) makes redirectord write to a new file.
 * Icecast's listclients, asked at the front door, lists the listeners connected now with their
 * own addresses.
 */

let stack: Stack;
let dir: string;
const procs: Managed[] = [];
const MOUNT = '/live.mp3';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'autoradio-access-'));
  stack = await startStack({ mountPaths: [MOUNT], redirectord: { extraArgs: ['--access-log', join(dir, 'access.log')] } });
  const { username, password } = stack.mounts[0]!;
  procs.push(ffmpegSource(`icecast://${username}:${password}@127.0.0.1:${stack.redirectord.httpPort}${MOUNT}`));
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  await stack?.stop();
  await rm(dir, { recursive: true, force: true });
});

const read = (name: string) => readFile(join(dir, name), 'utf8').catch(() => '');

async function listenFor(seconds: number, userAgent: string, extra: string[] = []): Promise<void> {
  const url = `http://127.0.0.1:${stack.redirectord.httpPort}/_stream${MOUNT}`;
  await waitFor('a listener gets audio', async () => {
    const curl = startProcess('curl', [...extra, '-s', '-o', '/dev/null', '-A', userAgent, '--max-time', String(seconds), '-w', '%{size_download}', url]);
    await curl.exited;
    return Number(curl.output.join('').trim()) > 8000;
  }, { timeoutMs: 20_000, intervalMs: 500 });
}

test('a finished /_stream session is one combined-format line with address, user agent, bytes and seconds', async () => {
  await listenFor(3, 'RoyaltyReport/1.0 (test)');
  const line = await waitFor('line written', async () => (await read('access.log')).split('\n').find((l) => l.includes('RoyaltyReport/1.0') && l.includes('" 200 ')));
  // Attempts before the source was up were logged too, with Icecast's answer.
  for (const l of (await read('access.log')).split('\n').filter(Boolean)) assert.match(l, /^127\.0\.0\.1 - - \[.*" (200|404) \d+ "-" ".*" \d+$/);
  const m = /^127\.0\.0\.1 - - \[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET \/live\.mp3 HTTP\/1\.1" 200 (\d+) "-" "RoyaltyReport\/1\.0 \(test\)" (\d+)$/.exec(line);
  assert.ok(m, line);
  assert.ok(Number(m[1]) > 8000, `bytes ${m[1]}`);
  assert.ok(Number(m[2]) >= 2 && Number(m[2]) <= 4, `seconds ${m[2]}`);
});

test('SIGHUP reopens the file: after a rotation new sessions go to the new file', async () => {
  await rename(join(dir, 'access.log'), join(dir, 'access.log.1'));
  process.kill(stack.redirectord.pid, 'SIGHUP');
  await waitFor('reopened', () => stack.redirectord.lines.some((l) => l.includes('access log reopened')));
  // The listener claims another address: the log keeps the one its connection came from.
  await listenFor(2, 'AfterRotation/2.0', ['-H', 'X-Forwarded-For: 198.51.100.66']);
  const line = await waitFor('line in the new file', async () => (await read('access.log')).split('\n').find((l) => l.includes('"AfterRotation/2.0"')));
  assert.match(line, /^127\.0\.0\.1 - - /);
  assert.doesNotMatch(await read('access.log'), /198\.51\.100\.66/);
  assert.doesNotMatch(await read('access.log.1'), /AfterRotation/);
  // Still running: SIGHUP no longer ends the daemon.
  assert.equal(stack.redirectord.proc.child.exitCode, null);
});

test("listclients at the front door shows each listener's own address and user agent; Icecast's own sees only the feed", async () => {
  const admin = stack.icecast.adminPassword;
  // What radiod does on a real node: the cluster's Icecast admin password lives in etcd.
  await stack.client.put(ICECAST_SECRETS_KEY).value(JSON.stringify({ adminPassword: admin, relayPassword: 'relay-password-0123456' }));
  const door = `http://127.0.0.1:${stack.redirectord.httpPort}`;
  const url = `${door}/_stream${MOUNT}`;
  await waitFor('the mount is on air', async () => (await fetch(url, { method: 'HEAD' })).status === 200);
  // Two listeners from two addresses of this host; one claims to be someone else.
  const a = startProcess('curl', ['-s', '-o', '/dev/null', '--interface', '127.0.0.2', '-A', 'Royalty-A/1.0', '--max-time', '60', url]);
  const b = startProcess('curl', ['-s', '-o', '/dev/null', '--interface', '127.0.0.3', '-A', 'Royalty-B/2.0', '-H', 'X-Forwarded-For: 198.51.100.66', '--max-time', '60', url]);
  procs.push(a, b);
  const asAdmin = { headers: { authorization: basicAuth('admin', admin) } };
  const listclients = `${door}/admin/listclients?mount=${encodeURIComponent(MOUNT)}`;
  let lastAnswer = '';
  const xml = await waitFor('both listeners listed', async () => {
    const res = await fetch(listclients, asAdmin);
    const text = await res.text();
    lastAnswer = `${res.status} ${text}`;
    return res.status === 200 && text.includes('<IP>127.0.0.2</IP>') && text.includes('<IP>127.0.0.3</IP>') ? text : undefined;
  }, { timeoutMs: 20_000, intervalMs: 300 }).catch((err: Error) => {
    throw new Error(`${err.message}: last answer ${lastAnswer}; curl a: ${a.output.join('')}; redirectord: ${stack.redirectord.lines.slice(-15).join('\n')}`);
  });
  assert.match(xml, /^<\?xml version="1.0"\?>\n<icestats><source mount="\/live\.mp3"><Listeners>2<\/Listeners>/);
  assert.match(xml, /<listener><IP>127\.0\.0\.2<\/IP><UserAgent>Royalty-A\/1\.0<\/UserAgent><Connected>\d+<\/Connected><ID>\d+<\/ID><\/listener>/);
  assert.match(xml, /<IP>127\.0\.0\.3<\/IP><UserAgent>Royalty-B\/2\.0<\/UserAgent>/);
  assert.doesNotMatch(xml, /198\.51\.100\.66|127\.0\.0\.1/);

  // Icecast itself sees one listener, the fan-out's feed from 127.0.0.1, in the same elements.
  const icecastXml = await (await fetch(`${stack.icecast.url}/admin/listclients?mount=${MOUNT}`, asAdmin)).text();
  assert.deepEqual([...icecastXml.matchAll(/<IP>([^<]*)<\/IP>/g)].map((m) => m[1]), ['127.0.0.1']);
  const elements = (text: string) => [...(/<listener>(.*?)<\/listener>/.exec(text)?.[1] ?? '').matchAll(/<(\w+)>/g)].map((m) => m[1]);
  assert.deepEqual(elements(xml), elements(icecastXml), `Icecast's listener elements: ${icecastXml}`);
  assert.deepEqual(elements(xml), ['IP', 'UserAgent', 'Connected', 'ID']);

  // The JSON form adds the bytes each got and when it started.
  const json = (await (await fetch(`${door}/admin/listclients.json`, asAdmin)).json()) as {
    mounts: { mount: string; listeners: { address: string; userAgent: string; bytes: number; since: string }[] }[];
  };
  const listed = json.mounts.find((m) => m.mount === MOUNT)?.listeners ?? [];
  assert.deepEqual(listed.map((l) => l.address).sort(), ['127.0.0.2', '127.0.0.3']);
  for (const l of listed) assert.ok(l.bytes > 0 && Date.parse(l.since) <= Date.now(), JSON.stringify(l));

  // Without the admin credentials: 401 and nothing about the listeners.
  for (const headers of [{}, { authorization: basicAuth('admin', `${admin}x`) }, { authorization: basicAuth('source', admin) }] as Record<string, string>[]) {
    const res = await fetch(listclients, { headers });
    const body = await res.text();
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Basic realm=/);
    assert.doesNotMatch(body, /127\.0\.0\.[23]|icestats/);
  }

  // Asked on a connection already handed to the HTTP application (a kept-alive client that read
  // the status page first): sent to a fresh connection, never answered by the listener routes.
  const reused = await rawExchange(stack.redirectord.httpPort, [
    'GET /status.json HTTP/1.1\r\nHost: x\r\n\r\n',
    `GET /admin/listclients?mount=${MOUNT} HTTP/1.1\r\nHost: x\r\nAuthorization: ${basicAuth('admin', admin)}\r\n\r\n`,
  ], { gapMs: 200 });
  const answers = reused.data.toString('latin1').match(/HTTP\/1\.1 \d{3}/g) ?? [];
  assert.deepEqual(answers, ['HTTP/1.1 200', 'HTTP/1.1 307'], reused.data.toString('latin1').slice(-900));
  assert.match(reused.data.toString('latin1'), /\r\nlocation: \/admin\/listclients\?mount=\/live\.mp3\r\n/i);

  // radioctl asks every live node; a node it cannot reach is named, not silently left out.
  await publishNode(stack.client, { ...nodeStatus('n2', 8000), addresses: [] }, false);
  const cli = await radioctl([...stack.etcdArgs, '--json', 'listeners', MOUNT, '--http-port', String(stack.redirectord.httpPort)]);
  assert.equal(cli.code, 0, cli.stderr);
  const listed2 = JSON.parse(cli.stdout) as { listeners: { node: string; mount: string; address: string; userAgent: string }[]; unanswered: { node: string }[] };
  assert.deepEqual(
    listed2.listeners.map((l) => `${l.node} ${l.mount} ${l.address} ${l.userAgent}`).sort(),
    ['n1 /live.mp3 127.0.0.2 Royalty-A/1.0', 'n1 /live.mp3 127.0.0.3 Royalty-B/2.0'],
  );
  assert.deepEqual(listed2.unanswered.map((u) => u.node), ['n2']);
  const human = await radioctl([...stack.etcdArgs, 'listeners', '--http-port', String(stack.redirectord.httpPort)]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^MOUNT\s+NODE\s+ADDRESS\s+CONNECTED\s+BYTES\s+USER AGENT\n\/live\.mp3\s+n1\s+127\.0\.0\.[23]\s+\d+s\s+\d+\s+Royalty-/);
  assert.match(human.stdout, /\n2 listeners on 1 node\nwarning: n2 did not answer \(it publishes no address\)/);

  // A listener that left is no longer listed.
  await a.stop('SIGKILL');
  await waitFor('the first listener gone from the list', async () => {
    const text = await (await fetch(listclients, asAdmin)).text();
    return !text.includes('127.0.0.2') && text.includes('<IP>127.0.0.3</IP>');
  });
  await b.stop('SIGKILL');
});
