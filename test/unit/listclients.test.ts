import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRequestHead, type RequestHead } from '../../src/redirectord/http/request-head.js';
import { classifyRequest } from '../../src/redirectord/http/classify.js';
import {
  isAdminAuthorization,
  listclientsRequest,
  renderListclientsJson,
  renderListclientsXml,
  type CurrentListener,
} from '../../src/redirectord/access/listclients.js';
import { listclientsAnswer } from '../../src/redirectord/access/listclients-answer.js';

function head(text: string): RequestHead {
  const p = parseRequestHead(Buffer.from(text.replace(/\n/g, '\r\n') + '\r\n'));
  assert.equal(p.kind, 'complete', text);
  return (p as { head: RequestHead }).head;
}

const PASSWORD = 'Admin-Password_0123456789';
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const NOW = Date.UTC(2026, 11, 5, 3, 0, 0);

const listeners: CurrentListener[] = [
  { id: 7, mount: '/b.mp3', address: '198.51.100.4', userAgent: 'VLC/3.0.21 LibVLC/3.0.21', since: NOW - 61_500, bytes: 1_000_000 },
  { id: 3, mount: '/a.ogg', address: '2001:db8::9', userAgent: 'Mozilla/5.0 <script>&"\x01', referer: 'https://radio.example/', since: NOW - 5_000, bytes: 4096 },
  { id: 9, mount: '/b.mp3', address: '203.0.113.7', since: NOW - 120_000, bytes: 10 },
];

test('listclients is classified apart from the admin paths that stay closed, GET only', () => {
  assert.deepEqual(classifyRequest(head('GET /admin/listclients?mount=/a.mp3 HTTP/1.1\n')), { kind: 'listclients', format: 'xml', query: '?mount=/a.mp3' });
  assert.deepEqual(classifyRequest(head('GET http://x/admin/listclients.json HTTP/1.1\n')), { kind: 'listclients', format: 'json', query: '' });
  for (const line of ['POST /admin/listclients HTTP/1.1\nContent-Length: 0\n', 'HEAD /admin/listclients HTTP/1.1\n']) {
    const c = classifyRequest(head(line));
    assert.deepEqual({ kind: c.kind, status: (c as { status?: number }).status }, { kind: 'reject', status: 405 }, line);
  }
  for (const path of ['/admin/listclients.xsl', '/admin/listclients/', '/admin/listclients.json/x', '/admin/Listclients', '/admin/constructor', '/admin/__proto__']) {
    const c = classifyRequest(head(`GET ${path} HTTP/1.1\n`));
    assert.deepEqual({ kind: c.kind, status: (c as { status?: number }).status }, { kind: 'reject', status: 403 }, path);
  }
});

test("the XML has Icecast's elements, per mount, oldest listener first, and escapes what the client chose", () => {
  const xml = renderListclientsXml(listeners, { format: 'xml' }, NOW);
  assert.equal(
    xml,
    '<?xml version="1.0"?>\n<icestats>' +
      '<source mount="/a.ogg"><Listeners>1</Listeners><listener><IP>2001:db8::9</IP><UserAgent>Mozilla/5.0 &lt;script&gt;&amp;&quot;</UserAgent><Connected>5</Connected><ID>3</ID></listener></source>' +
      '<source mount="/b.mp3"><Listeners>2</Listeners>' +
      '<listener><IP>203.0.113.7</IP><UserAgent></UserAgent><Connected>120</Connected><ID>9</ID></listener>' +
      '<listener><IP>198.51.100.4</IP><UserAgent>VLC/3.0.21 LibVLC/3.0.21</UserAgent><Connected>61</Connected><ID>7</ID></listener>' +
      '</source></icestats>\n',
  );
  // One mount asked for: only it, and present even with nobody listening.
  assert.equal(renderListclientsXml(listeners, { format: 'xml', mount: '/none.mp3' }, NOW), '<?xml version="1.0"?>\n<icestats><source mount="/none.mp3"><Listeners>0</Listeners></source></icestats>\n');
  assert.match(renderListclientsXml(listeners, { format: 'xml', mount: '/b.mp3' }, NOW), /^<\?xml version="1.0"\?>\n<icestats><source mount="\/b.mp3"><Listeners>2<\/Listeners>/);
});

test('the JSON carries what Icecast leaves out: referer, start time and bytes', () => {
  const json = JSON.parse(renderListclientsJson(listeners, { format: 'json', mount: '/a.ogg' }, NOW)) as unknown;
  assert.deepEqual(json, {
    mounts: [
      {
        mount: '/a.ogg',
        listeners: [
          // The control character XML cannot carry is left out of the JSON too: both list the same text.
          { id: 3, address: '2001:db8::9', userAgent: 'Mozilla/5.0 <script>&"', referer: 'https://radio.example/', since: new Date(NOW - 5000).toISOString(), connectedSeconds: 5, bytes: 4096 },
        ],
      },
    ],
  });
});

test('the mount parameter: one at most, a path, percent-decoded', () => {
  assert.deepEqual(listclientsRequest('xml', '?mount=%2Flive%2Fa.mp3'), { format: 'xml', mount: '/live/a.mp3' });
  assert.deepEqual(listclientsRequest('json', ''), { format: 'json' });
  assert.deepEqual(listclientsRequest('json', '?mount='), { format: 'json' });
  assert.ok('error' in listclientsRequest('xml', '?mount=/a&mount=/b'));
  assert.ok('error' in listclientsRequest('xml', '?mount=a.mp3'));
});

test('only admin with the cluster password gets in', () => {
  assert.equal(isAdminAuthorization(basic('admin', PASSWORD), PASSWORD), true);
  assert.equal(isAdminAuthorization(`  basic   ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`, PASSWORD), true);
  for (const header of [
    undefined,
    '',
    basic('admin', `${PASSWORD}x`),
    basic('admin', PASSWORD.slice(0, -1)),
    basic('source', PASSWORD),
    basic('admin', ''),
    `Bearer ${PASSWORD}`,
    `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}, Basic x`,
    'Basic !!!!',
  ]) {
    assert.equal(isAdminAuthorization(header, PASSWORD), false, String(header));
  }
  // Nothing is known yet: nobody gets in, not even with an empty password.
  assert.equal(isAdminAuthorization(basic('admin', ''), undefined), false);
  assert.equal(isAdminAuthorization(basic('admin', ''), ''), false);
});

test('the answer: credentials before anything else, listeners read only once allowed', () => {
  let reads = 0;
  const read = () => {
    reads++;
    return listeners;
  };
  const ask = (text: string, password: string | null = PASSWORD) =>
    listclientsAnswer(head(text), text.includes('.json') ? 'json' : 'xml', /\?[^ ]*/.exec(text)?.[0] ?? '', password ?? undefined, read, NOW);
  const noAuth = ask('GET /admin/listclients?mount=bad HTTP/1.1\n');
  assert.equal(noAuth.status, 401);
  assert.match(noAuth.response.toString(), /^HTTP\/1\.0 401 Unauthorized\r\n[^]*WWW-Authenticate: Basic realm="Icecast2 Server"\r\n/);
  assert.equal(ask(`GET /admin/listclients HTTP/1.1\nAuthorization: ${basic('admin', PASSWORD)}\n`, null).status, 503);
  assert.equal(reads, 0);
  const badMount = ask(`GET /admin/listclients?mount=bad HTTP/1.1\nAuthorization: ${basic('admin', PASSWORD)}\n`);
  assert.equal(badMount.status, 400);
  const ok = ask(`GET /admin/listclients.json?mount=/b.mp3 HTTP/1.1\nAuthorization: ${basic('admin', PASSWORD)}\n`);
  assert.equal(ok.status, 200);
  const text = ok.response.toString();
  assert.match(text, /^HTTP\/1\.1 200 OK\r\nContent-Type: application\/json\r\nCache-Control: no-store\r\n/);
  const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { mounts: { listeners: unknown[] }[] };
  assert.equal(body.mounts[0]!.listeners.length, 2);
  assert.equal(reads, 1);
});
