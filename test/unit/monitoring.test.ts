import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { COLLECTED, COUNTERS, GAUGES, TIMINGS, exportedFamilyNames } from '../../src/common/metric-catalogue.js';
import { onAirByMount } from '../../src/radiod/on-air-metrics.js';

/**
 * The metric catalogue follows Prometheus' naming rules, names every event the code sends, and
 * the shipped dashboard and alert rules (docs/monitoring) only query series the code exports.
 */

const MONITORING = join(import.meta.dirname, '../../docs/monitoring');
const catalogue = [...Object.values(COUNTERS), ...Object.values(GAUGES), ...Object.values(TIMINGS), ...COLLECTED];

test('catalogue: base units, _total only on counters, one name one meaning, a real HELP', () => {
  const names = catalogue.map((m) => m.name);
  assert.equal(new Set(names).size, names.length, 'a family name used twice');
  for (const m of catalogue) {
    assert.match(m.name, /^(autoradio|process)_[a-z0-9_]+$/, m.name);
    assert.doesNotMatch(m.name, /_(milliseconds|ms|kbps|kbits?|kilobytes|mbps)(_|$)/, `${m.name}: not a base unit`);
    assert.equal(m.name.endsWith('_total'), m.type === 'counter', `${m.name}: _total if and only if a counter`);
    assert.ok(m.help.length >= 15 && !/^autoradio (counter|gauge|summary) /.test(m.help), `${m.name}: HELP says what it counts`);
  }
  // Listeners Icecast counts and listeners the front door holds are two series.
  assert.notEqual(GAUGES['icecast.listeners']!.name, GAUGES['front_door.streams']!.name);
});

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('every event name the code sends has a catalogue entry of its kind', () => {
  const tables = { increment: COUNTERS, gauge: GAUGES, timing: TIMINGS, push: COUNTERS } as const;
  let seen = 0;
  for (const file of sourceFiles(join(import.meta.dirname, '../../src'))) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\b(?:metrics|this\.metrics)\.(increment|gauge|timing)\('([^']+)'|\bpush\('(dns\.[^']+)'/g)) {
      const kind = (m[1] ?? 'push') as keyof typeof tables;
      const name = m[2] ?? m[3]!;
      seen++;
      assert.ok(tables[kind][name], `${file}: ${kind}('${name}') is not in metric-catalogue.ts`);
    }
  }
  assert.ok(seen > 30, `only ${seen} calls found: the pattern no longer matches the code`);
});

/** Every autoradio_/process_ series a PromQL expression names (summary suffixes folded). */
function seriesIn(expr: string): string[] {
  return [...expr.matchAll(/\b((?:autoradio|process)_[a-zA-Z0-9_]+)/g)].map((m) => m[1]!.replace(/_(sum|count)$/, ''));
}

function assertExported(where: string, expr: string): void {
  const exported = exportedFamilyNames();
  const names = seriesIn(expr);
  assert.ok(names.length > 0, `${where}: "${expr}" names no autoradio series`);
  for (const n of names) assert.ok(exported.has(n), `${where}: ${n} is not exported by the code`);
}

test('Grafana dashboard: valid JSON whose every query names exported series', () => {
  const dash = JSON.parse(readFileSync(join(MONITORING, 'grafana-dashboard.json'), 'utf8')) as {
    panels: { title: string; targets: { expr: string }[] }[];
  };
  assert.ok(dash.panels.length >= 6);
  for (const p of dash.panels) {
    assert.ok(p.targets.length > 0, p.title);
    for (const t of p.targets) assertExported(`panel "${p.title}"`, t.expr);
  }
});

test('alert rules: promtool accepts them and every rule names exported series', () => {
  const file = join(MONITORING, 'alerts.yml');
  const out = execFileSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
  assert.match(out, /SUCCESS: \d+ rules found/);
  const exprs = [...readFileSync(file, 'utf8').matchAll(/^\s+expr: (.+)$/gm)].map((m) => m[1]!);
  assert.ok(exprs.length >= 4);
  for (const e of exprs) assertExported('alerts.yml', e);
  for (const alert of ['AutoradioNodeDown', 'AutoradioNoMaster', 'AutoradioMountOffAir', 'AutoradioEtcdUnreachable', 'AutoradioCertificateExpiringSoon']) {
    assert.match(readFileSync(file, 'utf8'), new RegExp(`alert: ${alert}\\b`));
  }
});

test('on air: configured mounts the master Icecast lists are 1, others 0; nothing off the master or without stats', () => {
  const stats = { listeners: 0, mounts: [{ mount: '/a.mp3', listeners: 0 }] };
  assert.deepEqual(onAirByMount(true, ['/a.mp3', '/b.ogg'], stats), new Map([['/a.mp3', 1], ['/b.ogg', 0]]));
  assert.equal(onAirByMount(false, ['/a.mp3'], stats), undefined);
  assert.equal(onAirByMount(true, ['/a.mp3'], undefined), undefined);
});
