import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Mount } from '../../src/coordination/mount.js';
import type { MasterInfo } from '../../src/coordination/cluster-state.js';
import {
  DEBIAN_ICECAST_PATHS,
  MASTER_UPDATE_INTERVAL_S,
  parseRelayUrl,
  renderIcecastConfig,
  sameRenderInputs,
  unusedSourcePassword,
  type IcecastNodeSettings,
  type RenderInput,
  type RenderInputs,
} from '../../src/radiod/icecast/render.js';
import { masterIcecast } from '../../src/coordination/host-port.js';
import { child, childText, children, parseXml, type XmlElement } from '../../src/radiod/icecast/xml.js';
import { escapeXml } from '../../src/common/xml-escape.js';

const secrets = { adminPassword: 'admin-secret-0123456789', relayPassword: 'relay-secret-0123456789' };

const node: IcecastNodeSettings = {
  name: 'node2',
  addresses: ['192.0.2.2'],
  icecastPort: 8000,
  hostname: 'radio.example.org',
  maxListeners: 500,
  paths: DEBIAN_ICECAST_PATHS,
};

const master: MasterInfo = { name: 'node1', addresses: ['192.0.2.1'], icecastPort: 8001 };

function mounts(...list: Mount[]): Map<string, Mount> {
  return new Map(list.map((m) => [m.path, m]));
}

const live: Mount = { path: '/live.mp3', username: 'source', password: 'livepass123' };
const backup: Mount = { path: '/backup.mp3', username: 'source', password: 'backuppass1' };
const withFallback: Mount = { ...live, fallback: '/backup.mp3' };
const pulled: Mount = { path: '/pulled.ogg', username: 'source', password: 'pulledpass1', relayUrl: 'http://upstream.example.com:8080/their/stream.ogg' };

function render(over: Partial<RenderInput>): XmlElement {
  const xml = renderIcecastConfig({ state: { mounts: new Map() }, isMaster: false, master, node, secrets, ...over });
  return parseXml(xml);
}

function mountSections(root: XmlElement): Map<string, XmlElement> {
  return new Map(children(root, 'mount').map((m) => [childText(m, 'mount-name')!, m]));
}

/** Relays by the public mount they feed: each pulls into the hidden `/_relay<path>` that `<path>` falls back to. */
function relays(root: XmlElement): Map<string, XmlElement> {
  return new Map(children(root, 'relay').map((r) => [childText(r, 'local-mount')!.replace(/^\/_relay/, ''), r]));
}

test('master: one <mount> per mount with its source credentials and no relays', () => {
  const root = render({ isMaster: true, state: { mounts: mounts(live, backup) } });
  assert.equal(root.name, 'icecast');
  const ms = mountSections(root);
  assert.deepEqual([...ms.keys()], ['/backup.mp3', '/live.mp3']);
  assert.equal(childText(ms.get('/live.mp3')!, 'username'), 'source');
  assert.equal(childText(ms.get('/live.mp3')!, 'password'), 'livepass123');
  assert.equal(childText(ms.get('/backup.mp3')!, 'password'), 'backuppass1');
  assert.equal(relays(root).size, 0);
});

test('master: fallback-mount with fallback-override 1', () => {
  const root = render({ isMaster: true, state: { mounts: mounts(withFallback, backup) } });
  const m = mountSections(root).get('/live.mp3')!;
  assert.equal(childText(m, 'fallback-mount'), '/backup.mp3');
  assert.equal(childText(m, 'fallback-override'), '1');
  assert.equal(childText(mountSections(root).get('/backup.mp3')!, 'fallback-mount'), undefined);
});

test('master: a relay mount is pulled from its URL and takes no source credentials', () => {
  const root = render({ isMaster: true, state: { mounts: mounts(pulled) } });
  const r = relays(root).get('/pulled.ogg')!;
  assert.ok(r, 'relay present');
  assert.equal(childText(r, 'server'), 'upstream.example.com');
  assert.equal(childText(r, 'port'), '8080');
  assert.equal(childText(r, 'mount'), '/their/stream.ogg');
  assert.equal(childText(r, 'on-demand'), '0');
  assert.equal(childText(r, 'username'), undefined);
  assert.equal(mountSections(root).has('/pulled.ogg'), false);
});

test('relay URL: default port 80, query kept, credentials decoded, IPv6 brackets dropped', () => {
  assert.deepEqual(parseRelayUrl('http://example.com/a.mp3'), { server: 'example.com', port: 80, mount: '/a.mp3' });
  assert.deepEqual(parseRelayUrl('http://u%40x:p%3Aw@example.com:81/a?b=1'), {
    server: 'example.com',
    port: 81,
    mount: '/a?b=1',
    username: 'u@x',
    password: 'p:w',
  });
  assert.equal(parseRelayUrl('http://[2001:db8::1]:8000/x')?.server, '2001:db8::1');
  assert.equal(parseRelayUrl('https://example.com/x'), undefined);
  assert.equal(parseRelayUrl('not a url'), undefined);
});

test('non-master: one <relay> per mount from the master, without credentials, not on demand', () => {
  const root = render({ state: { mounts: mounts(live, pulled) } });
  const rs = relays(root);
  assert.deepEqual([...rs.keys()].sort(), ['/live.mp3', '/pulled.ogg']);
  for (const [path, r] of rs) {
    assert.equal(childText(r, 'server'), '192.0.2.1');
    assert.equal(childText(r, 'port'), '8001');
    assert.equal(childText(r, 'mount'), path);
    // A mount with Icecast's URL authenticator answers 401 to a listener presenting the relay user.
    assert.equal(childText(r, 'username'), undefined);
    assert.equal(childText(r, 'password'), undefined);
    assert.equal(childText(r, 'on-demand'), '0');
  }
  // No source can connect here with a mount's credentials.
  for (const m of children(root, 'mount')) assert.equal(childText(m, 'password'), undefined);
  assert.equal(childText(root, 'master-update-interval'), String(MASTER_UPDATE_INTERVAL_S));
  assert.ok(MASTER_UPDATE_INTERVAL_S <= 5);
});

test('non-master: the public mount falls back to its hidden relay mount, which falls back to the mount\'s fallback', () => {
  const root = render({ state: { mounts: mounts(withFallback, backup) } });
  const sections = mountSections(root);
  const m = sections.get('/live.mp3')!;
  // The public mount stays free for a source the moment this node is elected (no reload).
  assert.equal(childText(m, 'fallback-mount'), '/_relay/live.mp3');
  assert.equal(childText(m, 'fallback-override'), '1');
  assert.equal(childText(m, 'username'), undefined);
  assert.equal(childText(relays(root).get('/live.mp3')!, 'local-mount'), '/_relay/live.mp3');
  const relayMount = sections.get('/_relay/live.mp3')!;
  assert.equal(childText(relayMount, 'fallback-mount'), '/backup.mp3');
  assert.equal(childText(relayMount, 'fallback-override'), '1');
  assert.equal(sections.get('/_relay/backup.mp3'), undefined);
  assert.equal(relays(root).size, 2);
});

test('non-master without a master, or seeing itself as master in a stale view: no relays', () => {
  assert.equal(relays(render({ master: undefined, state: { mounts: mounts(live) } })).size, 0);
  const self = { ...master, name: node.name };
  assert.equal(relays(render({ master: self, state: { mounts: mounts(live) } })).size, 0);
});

test('master address of our own family is preferred', () => {
  const m = { name: 'm', addresses: ['2001:db8::1', '192.0.2.1'], icecastPort: 8000 };
  assert.deepEqual(masterIcecast(m, ['192.0.2.9']), { host: '192.0.2.1', port: 8000 });
  assert.deepEqual(masterIcecast(m, ['2001:db8::9']), { host: '2001:db8::1', port: 8000 });
  assert.deepEqual(masterIcecast(m, []), { host: '2001:db8::1', port: 8000 });
  assert.equal(masterIcecast(undefined, []), undefined);
  assert.equal(masterIcecast({ ...m, addresses: [] }, []), undefined);
  const root = render({ master: m, state: { mounts: mounts(live) } });
  assert.equal(childText(relays(root).get('/live.mp3')!, 'server'), '192.0.2.1');
});

test('secrets, paths, port and limits', () => {
  const root = render({
    node: { ...node, bindAddress: '127.0.0.1', paths: { ...DEBIAN_ICECAST_PATHS, logdir: '/tmp/x/log', pidfile: '/tmp/x/pid' } },
  });
  const auth = child(root, 'authentication')!;
  assert.equal(childText(auth, 'admin-user'), 'admin');
  assert.equal(childText(auth, 'admin-password'), secrets.adminPassword);
  assert.equal(childText(auth, 'relay-user'), 'relay');
  assert.equal(childText(auth, 'relay-password'), secrets.relayPassword);
  const globalSource = childText(auth, 'source-password')!;
  assert.equal(globalSource, unusedSourcePassword(secrets));
  assert.notEqual(globalSource, secrets.adminPassword);
  assert.ok(globalSource.length >= 32);
  const sock = child(root, 'listen-socket')!;
  assert.equal(childText(sock, 'port'), '8000');
  assert.equal(childText(sock, 'bind-address'), '127.0.0.1');
  const paths = child(root, 'paths')!;
  assert.equal(childText(paths, 'basedir'), '/usr/share/icecast2');
  assert.equal(childText(paths, 'webroot'), '/usr/share/icecast2/web');
  assert.equal(childText(paths, 'adminroot'), '/usr/share/icecast2/admin');
  assert.equal(childText(paths, 'logdir'), '/tmp/x/log');
  assert.equal(childText(paths, 'pidfile'), '/tmp/x/pid');
  assert.equal(childText(child(root, 'security')!, 'chroot'), '0');
  assert.equal(child(child(root, 'security')!, 'changeowner'), undefined);
  const limits = child(root, 'limits')!;
  assert.ok(Number(childText(limits, 'clients')) > 500);
  assert.ok(Number(childText(limits, 'sources')) >= 2);
  assert.equal(childText(limits, 'source-timeout'), '10');
  // Debian defaults when not overridden, and no pidfile / bind address.
  const plain = render({});
  assert.equal(childText(child(plain, 'paths')!, 'logdir'), '/var/log/icecast2');
  assert.equal(childText(child(plain, 'paths')!, 'pidfile'), undefined);
  assert.equal(childText(child(plain, 'listen-socket')!, 'bind-address'), undefined);
});

test('the source limit grows with the number of mounts', () => {
  const many = Array.from({ length: 40 }, (_, i) => ({ ...live, path: `/m${i}.mp3` }));
  const root = render({ isMaster: true, state: { mounts: mounts(...many) } });
  assert.ok(Number(childText(child(root, 'limits')!, 'sources')) >= 40);
  assert.equal(children(root, 'mount').length, 40);
});

test('the output is deterministic and independent of map order', () => {
  const a = renderIcecastConfig({ state: { mounts: mounts(live, backup, pulled) }, isMaster: true, master, node, secrets });
  const b = renderIcecastConfig({ state: { mounts: mounts(pulled, backup, live) }, isMaster: true, master, node, secrets });
  assert.equal(a, b);
});

test('every value is escaped: nothing from a mount or URL can add elements', () => {
  const evil: Mount = {
    path: '/a</mount-name><relay><server>evil</server></relay><mount-name>',
    username: 'u"><x',
    password: "p'&<b>",
    fallback: '/f&amp;<x/>',
    relayUrl: 'http://h.example/x?a=<relay>&b="1"',
  };
  const evil2: Mount = { ...evil, path: '/b&c', relayUrl: undefined };
  for (const isMaster of [true, false]) {
    const xml = renderIcecastConfig({
      state: { mounts: mounts(evil, evil2) },
      isMaster,
      master: { name: 'x<y', addresses: ['192.0.2.1'], icecastPort: 8000 },
      node: { ...node, name: 'n<&>', hostname: 'h"<>' },
      secrets: { adminPassword: '</admin-password><x>', relayPassword: '"&\'' },
    });
    const root = parseXml(xml);
    const relayServers = children(root, 'relay').map((r) => childText(r, 'server'));
    assert.ok(!relayServers.includes('evil'), 'no injected relay');
    assert.equal(child(root, 'x'), undefined);
    const names = children(root, 'mount').map((m) => childText(m, 'mount-name'));
    assert.ok(names.includes(evil.path), 'path round-trips as text');
    assert.equal(childText(child(root, 'authentication')!, 'admin-password'), '</admin-password><x>');
    assert.equal(childText(child(root, 'authentication')!, 'relay-password'), '"&\'');
    if (isMaster) {
      const m = children(root, 'mount').find((e) => childText(e, 'mount-name') === evil2.path)!;
      assert.equal(childText(m, 'password'), "p'&<b>");
      assert.equal(childText(m, 'fallback-mount'), '/f&amp;<x/>');
      const r = children(root, 'relay')[0]!;
      assert.equal(childText(r, 'mount'), '/x?a=%3Crelay%3E&b=%221%22');
    }
  }
  assert.equal(escapeXml(`<a href="x">&'`), '&lt;a href=&quot;x&quot;&gt;&amp;&apos;');
});

test('control characters are dropped (XML 1.0 cannot carry them)', () => {
  const xml = renderIcecastConfig({
    state: { mounts: new Map() },
    isMaster: true,
    master,
    node: { ...node, hostname: 'a\u0001b' },
    secrets,
  });
  assert.equal(childText(parseXml(xml), 'hostname'), 'ab');
});

test('render inputs: equal only with the same mounts map, role, fencing and master', () => {
  const m = mounts(live);
  const base: RenderInputs = { mounts: m, isMaster: false, fenced: false, master, onDemandRelays: new Set() };
  assert.equal(sameRenderInputs(undefined, base), false);
  assert.equal(sameRenderInputs(base, { ...base, master: { ...master, addresses: [...master.addresses] } }), true);
  assert.equal(sameRenderInputs(base, { ...base, mounts: mounts(live) }), false);
  assert.equal(sameRenderInputs(base, { ...base, isMaster: true }), false);
  assert.equal(sameRenderInputs(base, { ...base, fenced: true }), false);
  assert.equal(sameRenderInputs(base, { ...base, master: undefined }), false);
  assert.equal(sameRenderInputs(base, { ...base, master: { ...master, icecastPort: 9000 } }), false);
  assert.equal(sameRenderInputs(base, { ...base, master: { ...master, addresses: ['192.0.2.9'] } }), false);
  assert.equal(sameRenderInputs(base, { ...base, onDemandRelays: new Set(['/live.mp3']) }), false);
  assert.equal(sameRenderInputs({ ...base, onDemandRelays: new Set(['/live.mp3']) }, { ...base, onDemandRelays: new Set(['/live.mp3']) }), true);
});

test('a relay of a mount long off air waits for a listener (on-demand); the others and outside relays pull all the time', () => {
  const via = { ...node, relayVia: { host: '127.0.0.1', port: 80 } };
  const rs = relays(render({ state: { mounts: mounts(live, pulled) }, isMaster: false, master, node: via, onDemandRelays: new Set(['/pulled.ogg']) }));
  assert.equal(childText(rs.get('/pulled.ogg')!, 'on-demand'), '1');
  assert.equal(childText(rs.get('/live.mp3')!, 'on-demand'), '0');
  // On the master an outside relay always pulls: it is the mount's source.
  const onMaster = relays(render({ state: { mounts: mounts(pulled) }, isMaster: true, master: undefined, node: via, onDemandRelays: new Set(['/pulled.ogg']) }));
  assert.equal(childText(onMaster.get('/pulled.ogg')!, 'on-demand'), '0');
});

test('relays through the front door: /_relay<mount> on the local front door, whoever is master, never on the master', () => {
  const via = { ...node, relayVia: { host: '127.0.0.1', port: 80 } };
  for (const m of [master, undefined]) {
    const rs = relays(render({ node: via, master: m, state: { mounts: mounts(live, pulled) } }));
    assert.deepEqual([...rs.keys()].sort(), ['/live.mp3', '/pulled.ogg']);
    for (const [path, r] of rs) {
      assert.equal(childText(r, 'server'), '127.0.0.1');
      assert.equal(childText(r, 'port'), '80');
      assert.equal(childText(r, 'mount'), `/_relay${path}`);
      assert.equal(childText(r, 'username'), undefined);
    }
  }
  // The same file for any master: a failover rewrites nothing and restarts no relay here.
  const a = renderIcecastConfig({ state: { mounts: mounts(live) }, isMaster: false, master, node: via, secrets });
  const b = renderIcecastConfig({ state: { mounts: mounts(live) }, isMaster: false, master: { ...master, name: 'node3', addresses: ['192.0.2.3'] }, node: via, secrets });
  assert.equal(a, b);
  assert.equal(relays(render({ node: via, isMaster: true, master: undefined, state: { mounts: mounts(live) } })).size, 0);
});

test('every mount that takes sources asks radiod about them, on the master and elsewhere; a pulled mount does not', () => {
  const url = 'http://127.0.0.1:41234/source-auth';
  const authOf = (m: XmlElement) => children(m, 'authentication')[0];
  for (const isMaster of [true, false]) {
    const root = render({ isMaster, master: isMaster ? undefined : master, node: { ...node, sourceAuthUrl: url }, state: { mounts: mounts(live, pulled) } });
    const auth = authOf(mountSections(root).get('/live.mp3')!)!;
    assert.equal(auth.attributes['type'], 'url');
    const options = new Map(children(auth, 'option').map((o) => [o.attributes['name'], o.attributes['value']]));
    assert.equal(options.get('stream_auth'), url);
    assert.equal(options.get('auth_header'), 'icecast-auth-user: 1');
    // Only sources: no listener URL, so listeners are never sent to radiod.
    assert.equal(options.get('listener_add'), undefined);
    const pulledSection = mountSections(root).get('/pulled.ogg');
    assert.equal(pulledSection && authOf(pulledSection), undefined);
  }
});
