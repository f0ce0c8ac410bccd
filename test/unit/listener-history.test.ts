import { nextSampleInMs } from '../../src/radiod/listener-history-writer.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  HISTORY_MAX_MOUNTS,
  HISTORY_MINUTES,
  MINUTE_MS,
  appendSample,
  parseListenerHistory,
  type ListenerHistory,
} from '../../src/coordination/listener-history.js';
import { listenerChart } from '../../src/redirectord/http/listener-chart.js';

const T0 = Date.UTC(2026, 11, 4, 12, 0, 0);

test('samples append per minute; a repeated minute replaces; missed minutes are gaps', () => {
  let h = appendSample(undefined, T0 + 1234, { '/a.mp3': 3, '/b.mp3': 0 });
  assert.deepEqual(h, { v: 1, end: T0, total: [3], mounts: { '/a.mp3': [3] } });
  h = appendSample(h, T0 + 30_000, { '/a.mp3': 4 });
  assert.deepEqual(h.total, [4]);
  h = appendSample(h, T0 + 3 * MINUTE_MS, { '/a.mp3': 5, '/b.mp3': 1 });
  assert.deepEqual(h.total, [4, null, null, 6]);
  assert.deepEqual(h.mounts, { '/a.mp3': [4, null, null, 5], '/b.mp3': [null, null, null, 1] });
  // A writer whose clock is behind changes nothing.
  assert.equal(appendSample(h, T0, { '/a.mp3': 99 }), h);
  assert.deepEqual(parseListenerHistory(JSON.stringify(h)), h);
});

test('the history is bounded: 24 h of minutes and the busiest mounts only', () => {
  let h: ListenerHistory | undefined;
  const perMount: Record<string, number> = {};
  for (let i = 0; i < HISTORY_MAX_MOUNTS + 10; i++) perMount[`/m${String(i).padStart(2, '0')}.mp3`] = i;
  for (let m = 0; m < HISTORY_MINUTES + 50; m++) h = appendSample(h, T0 + m * MINUTE_MS, perMount);
  assert.equal(h!.total.length, HISTORY_MINUTES);
  assert.equal(Object.keys(h!.mounts).length, HISTORY_MAX_MOUNTS);
  assert.ok(!('/m00.mp3' in h!.mounts) && '/m29.mp3' in h!.mounts, 'the quietest mounts are the ones dropped');
  const size = JSON.stringify(h).length;
  assert.ok(size < 150_000, `stored value is ${size} bytes`);
  // A day-long gap restarts the series rather than growing it.
  const later = appendSample(h, h!.end + 3 * HISTORY_MINUTES * MINUTE_MS, { '/m29.mp3': 1 });
  assert.equal(later.total.length, HISTORY_MINUTES);
  assert.equal(later.total.filter((v) => v !== null).length, 1);
});

test('stored values this version cannot read are no history', () => {
  for (const bad of ['', 'null', '{"v":2,"end":0,"total":[],"mounts":{}}', '{"v":1,"end":0,"total":[-1],"mounts":{}}']) {
    assert.equal(parseListenerHistory(bad), undefined, bad);
  }
});

test('the chart is inline SVG with the label escaped and gaps breaking the line', () => {
  const svg = listenerChart('/<b>.mp3', [1, 2, null, 4], T0, 4);
  assert.match(svg, /<svg viewBox="0 0 720 120"/);
  assert.ok(!svg.includes('<b>'));
  assert.match(svg, /\/&lt;b&gt;\.mp3: 4 now, peak 4/);
  const d = /<path d="([^"]*)"/.exec(svg)![1]!;
  assert.equal((d.match(/M/g) ?? []).length, 2, `two line pieces around the gap: ${d}`);
  assert.ok(!/<script|href=|url\(/i.test(svg));
});

test('the writer samples once a minute, a few seconds into it, never twice in one minute', () => {
  assert.equal(nextSampleInMs(120_000, 5_000), 5_000);
  assert.equal(nextSampleInMs(124_000, 5_000), 1_000);
  // Exactly at the sampling instant: the next one is a whole minute later, not now again.
  assert.equal(nextSampleInMs(125_000, 5_000), 60_000);
  assert.equal(nextSampleInMs(126_000, 5_000), 59_000);
  assert.equal(nextSampleInMs(179_999, 0), 1);
});
