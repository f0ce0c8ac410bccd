import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAdminStats, parseIcecastIsoTime, parseStatusJson } from '../../src/radiod/icecast/stats.js';
import { BandwidthMeter } from '../../src/radiod/icecast/bandwidth.js';
import { parseXml } from '../../src/radiod/icecast/xml.js';
import { buildNodeStatus } from '../../src/radiod/node-report.js';
import { nodeStatusProblems } from '../../src/coordination/node-status.js';

// Captured from Icecast 2.4.4 (/admin/stats with one ffmpeg source and one listener).
const ADMIN_STATS = `<?xml version="1.0"?>
<icestats><admin>test@localhost</admin><client_connections>4</client_connections><clients>2</clients><connections>5</connections><file_connections>0</file_connections><host>127.0.0.1</host><listener_connections>1</listener_connections><listeners>1</listeners><location>test</location><server_id>Icecast 2.4.4</server_id><server_start>Sun, 22 Nov 2026 02:17:57 +0000</server_start><server_start_iso8601>2026-11-22T02:17:57+0000</server_start_iso8601><source_client_connections>1</source_client_connections><source_relay_connections>0</source_relay_connections><source_total_connections>1</source_total_connections><sources>1</sources><stats>0</stats><stats_connections>0</stats_connections><source mount="/a.mp3"><genre>various</genre><listener_peak>1</listener_peak><listeners>1</listeners><listenurl>http://127.0.0.1:37181/a.mp3</listenurl><max_listeners>unlimited</max_listeners><public>0</public><server_description>Unspecified description</server_description><server_name>Unspecified name</server_name><server_type>audio/mpeg</server_type><slow_listeners>0</slow_listeners><source_ip>127.0.0.1</source_ip><stream_start>Sun, 22 Nov 2026 02:17:57 +0000</stream_start><stream_start_iso8601>2026-11-22T02:17:57+0000</stream_start_iso8601><total_bytes_read>81920</total_bytes_read><total_bytes_sent>65536</total_bytes_sent><user_agent>Lavf/59.27.100</user_agent></source></icestats>
`;

const STATUS_JSON_ONE = `{"icestats":{"admin":"test@localhost","host":"127.0.0.1","location":"test","server_id":"Icecast 2.4.4","server_start":"Sun, 22 Nov 2026 02:17:57 +0000","server_start_iso8601":"2026-11-22T02:17:57+0000","source":{"genre":"various","listener_peak":1,"listeners":1,"listenurl":"http://127.0.0.1:37181/a.mp3","server_description":"Unspecified description","server_name":"Unspecified name","server_type":"audio/mpeg","stream_start":"Sun, 22 Nov 2026 02:17:57 +0000","stream_start_iso8601":"2026-11-22T02:17:57+0000","dummy":null}}}`;

test('admin stats: per-mount listeners, byte counters, source details', () => {
  const s = parseAdminStats(ADMIN_STATS);
  assert.equal(s.serverId, 'Icecast 2.4.4');
  assert.equal(s.listeners, 1);
  assert.deepEqual(s.mounts, [
    {
      mount: '/a.mp3',
      listeners: 1,
      totalBytesSent: 65536,
      totalBytesRead: 81920,
      sourceIp: '127.0.0.1',
      userAgent: 'Lavf/59.27.100',
      sourceSince: Date.UTC(2026, 10, 22, 2, 17, 57),
      contentType: 'audio/mpeg',
    },
  ]);
});

test('admin stats: title, bitrate from ice-bitrate or ice-audio-info, Icecast time offsets', () => {
  const xml = `<icestats><server_id>Icecast 2.4.4</server_id>
    <source mount="/a.mp3"><listeners>0</listeners><server_type>audio/mpeg</server_type><bitrate>128</bitrate>
      <stream_start_iso8601>2026-11-22T03:17:57+0100</stream_start_iso8601><title>Song &amp; Artist</title></source>
    <source mount="/b.ogg"><listeners>0</listeners><audio_info>ice-samplerate=44100;ice-bitrate=96;ice-channels=2</audio_info>
      <stream_start_iso8601>2026-11-22T02:17:57+0000</stream_start_iso8601><title>   </title></source>
    <source mount="/c.mp3"><listeners>2</listeners></source></icestats>`;
  const [a, b, c] = parseAdminStats(xml).mounts;
  assert.deepEqual([a!.sourceSince, a!.title, a!.bitrateKbps], [Date.UTC(2026, 10, 22, 2, 17, 57), 'Song & Artist', 128]);
  assert.deepEqual([b!.bitrateKbps, b!.title], [96, undefined]);
  assert.equal(c!.sourceSince, undefined, 'no stream start: no source, off air');
  assert.equal(parseIcecastIsoTime('not a time'), undefined);
  const long = parseAdminStats(
    `<icestats><server_id>x</server_id><source mount="/a"><title>${'x'.repeat(5000)}</title></source></icestats>`,
  );
  assert.equal(long.mounts[0]!.title!.length, 256, 'titles are bounded before they are republished');
});

test('admin stats: several mounts, none, escaped mount names', () => {
  const xml = `<?xml version="1.0"?><icestats><listeners>7</listeners><server_id>Icecast 2.4.4</server_id>
    <source mount="/a&amp;b.mp3"><listeners>3</listeners><total_bytes_sent>10</total_bytes_sent></source>
    <source mount="/c.ogg"><listeners>4</listeners></source></icestats>`;
  const s = parseAdminStats(xml);
  assert.deepEqual(s.mounts.map((m) => [m.mount, m.listeners]), [['/a&b.mp3', 3], ['/c.ogg', 4]]);
  assert.equal(s.mounts[1]!.totalBytesSent, undefined);
  assert.equal(s.listeners, 7);
  assert.deepEqual(parseAdminStats('<icestats><server_id>Icecast</server_id></icestats>').mounts, []);
});

test('admin stats: garbage, truncation, wrong root and unpopulated stats are errors', () => {
  assert.throws(() => parseAdminStats(''));
  assert.throws(() => parseAdminStats(ADMIN_STATS.slice(0, 300)));
  assert.throws(() => parseAdminStats('<html><body>401</body></html>'));
  assert.throws(() => parseAdminStats('<icestats></icestats>'), /server_id/);
});

test('status-json: one mount as an object, several as an array, none absent', () => {
  const one = parseStatusJson(STATUS_JSON_ONE);
  assert.deepEqual(one.mounts, [
    { mount: '/a.mp3', listeners: 1, sourceSince: Date.UTC(2026, 10, 22, 2, 17, 57), contentType: 'audio/mpeg' },
  ]);
  const two = parseStatusJson(
    JSON.stringify({
      icestats: {
        server_id: 'Icecast 2.4.4',
        source: [
          { listeners: 2, listenurl: 'http://h:8000/x.mp3', dummy: null },
          { listeners: 5, listenurl: 'http://h:8000/y/z.ogg', dummy: null },
        ],
      },
    }),
  );
  assert.deepEqual(two.mounts.map((m) => m.mount), ['/x.mp3', '/y/z.ogg']);
  assert.equal(two.listeners, 7);
  assert.deepEqual(parseStatusJson('{"icestats":{"server_id":"Icecast 2.4.4","dummy":null}}').mounts, []);
  assert.throws(() => parseStatusJson('{"icestats":{"admin":"x"}}'), /server_id/);
  assert.throws(() => parseStatusJson('{"icestats":{"source":{"listeners":,}}'));
});

test('xml reader: entities, attributes, comments, mismatched tags', () => {
  const root = parseXml(`<?xml version="1.0"?><!-- c --><a x='1' y="&lt;&#65;&#x42;"><b>t&amp;u</b><c/></a>`);
  assert.equal(root.attributes['y'], '<AB');
  assert.equal(root.children[0]!.text, 't&u');
  assert.equal(root.children[1]!.name, 'c');
  assert.throws(() => parseXml('<a><b></a></b>'));
  assert.throws(() => parseXml('<a>'));
  assert.throws(() => parseXml('<a/><b/>'));
  assert.throws(() => parseXml('<a>&bogus;</a>'));
});

test('bandwidth: kbit/s over the window from total_bytes_sent deltas', () => {
  const meter = new BandwidthMeter(10_000);
  assert.equal(meter.sample(0, [{ mount: '/a', listeners: 1, totalBytesSent: 1000 }]), 0);
  // Icecast refreshes the counter every few seconds: flat, then a jump.
  meter.sample(1000, [{ mount: '/a', listeners: 1, totalBytesSent: 1000 }]);
  const r = meter.sample(5000, [{ mount: '/a', listeners: 1, totalBytesSent: 1000 + 80_000 }]);
  assert.equal(r, 128); // 80 kB in 5 s = 128 kbit/s
  // Two mounts add up; a new mount counts from its second sample.
  const r2 = meter.sample(10_000, [
    { mount: '/a', listeners: 1, totalBytesSent: 161_000 },
    { mount: '/b', listeners: 1, totalBytesSent: 999_999 },
  ]);
  assert.equal(r2, 128);
  // A counter reset (source restarted) counts its new bytes, never a negative rate.
  const r3 = meter.sample(15_000, [
    { mount: '/a', listeners: 1, totalBytesSent: 5_000 },
    { mount: '/b', listeners: 1, totalBytesSent: 999_999 },
  ]);
  assert.ok(r3 >= 0);
  // Old samples leave the window: idle traffic reads 0 after it.
  meter.sample(30_000, [{ mount: '/a', listeners: 0, totalBytesSent: 5_000 }]);
  assert.equal(meter.sample(41_000, [{ mount: '/a', listeners: 0, totalBytesSent: 5_000 }]), 0);
});

test('node report: listeners per mount, limits, icecastOk, valid NodeStatus', () => {
  const settings = { name: 'n1', addresses: ['127.0.0.1'], icecastPort: 8000, maxListeners: 100, bandwidthMbps: 2.5 };
  const status = buildNodeStatus(settings, parseAdminStats(ADMIN_STATS), 128.4, 42);
  assert.deepEqual(status, {
    name: 'n1',
    addresses: ['127.0.0.1'],
    icecastPort: 8000,
    icecastOk: true,
    mounts: { '/a.mp3': 1 },
    listeners: 1,
    bandwidthKbps: 128.4,
    maxListeners: 100,
    maxBandwidthKbps: 2500,
    reportedAt: 42,
  });
  assert.deepEqual(nodeStatusProblems(status), []);
  const down = buildNodeStatus(settings, undefined, 50, 43);
  assert.equal(down.icecastOk, false);
  assert.equal(down.listeners, 0);
  assert.equal(down.bandwidthKbps, 0);
  assert.deepEqual(nodeStatusProblems(down), []);
});
