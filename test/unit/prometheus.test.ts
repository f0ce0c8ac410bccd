import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_SERIES_PER_FAMILY, PrometheusRegistry } from '../../src/common/prometheus.js';
import { createMetrics, foldLabels } from '../../src/common/metrics.js';
import { parseMetricsListen } from '../../src/common/metrics-server.js';
import { Command } from 'commander';
import { addDaemonOptions } from '../../src/common/flags.js';

test('counters, gauges and summaries render in text format 0.0.4 with escaped labels', () => {
  const r = new PrometheusRegistry();
  r.describe('autoradio_listeners', 'gauge', 'Listeners per node\nand mount');
  r.set('autoradio_listeners', 3, { node: 'n1', mount: '/a "b"\\c' });
  r.inc('autoradio_http_redirect_total', 1, { node: 'n1' });
  r.inc('autoradio_http_redirect_total', 2, { node: 'n1' });
  r.inc('autoradio_http_redirect_total', -5, { node: 'n1' }); // counters never go down
  r.observe('autoradio_reload_milliseconds', 10);
  r.observe('autoradio_reload_milliseconds', 30);
  const text = r.render();
  assert.match(text, /^# HELP autoradio_listeners Listeners per node\\nand mount$/m);
  assert.match(text, /^# TYPE autoradio_listeners gauge$/m);
  assert.match(text, /^autoradio_listeners\{mount="\/a \\"b\\"\\\\c",node="n1"\} 3$/m);
  assert.match(text, /^autoradio_http_redirect_total\{node="n1"\} 3$/m);
  assert.match(text, /^autoradio_reload_milliseconds_sum 40$/m);
  assert.match(text, /^autoradio_reload_milliseconds_count 2$/m);
  assert.ok(text.endsWith('\n'));
  // Every non-comment line is `name{labels} value`.
  for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) {
    assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eEInfNa]+$/, line);
  }
});

test('a name keeps its first type; series per family are capped', () => {
  const r = new PrometheusRegistry();
  r.set('x', 1);
  r.inc('x', 5);
  assert.equal(r.value('x'), 1);
  for (let i = 0; i < MAX_SERIES_PER_FAMILY + 10; i++) r.set('many', i, { i: String(i) });
  assert.match(r.render(), /^autoradio_prometheus_dropped_series_total 10$/m);
});

test('collectors refresh gauges at render; reset drops stale series', () => {
  const r = new PrometheusRegistry();
  let nodes = ['a', 'b'];
  r.addCollector(() => {
    r.reset('up');
    for (const n of nodes) r.set('up', 1, { node: n });
  });
  assert.match(r.render(), /up\{node="b"\} 1/);
  nodes = ['a'];
  assert.doesNotMatch(r.render(), /node="b"/);
});

test('Metrics calls feed Prometheus with labels; statsd names fold the label values', () => {
  const r = new PrometheusRegistry();
  const m = createMetrics(undefined, 'redirectord', 'n1', () => {}, r);
  m.increment('http.redirect', 1, { node: 'n-2' });
  m.gauge('front_door.sources', 2);
  m.timing('icecast.config_propagation', 12);
  assert.equal(r.value('autoradio_http_redirect_total', { node: 'n-2' }), 1);
  assert.equal(r.value('autoradio_front_door_sources'), 2);
  // Timings are given in milliseconds and exported in the base unit, seconds.
  assert.match(r.render(), /^autoradio_icecast_config_propagation_seconds_sum 0\.012$/m);
  assert.match(r.render(), /^# HELP autoradio_http_redirect_total Listener requests redirected, by the node chosen$/m);
  assert.equal(foldLabels('http.redirect', { node: 'n-2' }), 'http.redirect.n-2');
  assert.equal(foldLabels('listeners', { node: 'n1', mount: '/live.mp3' }), 'listeners.n1._live_mp3');
  assert.equal(foldLabels('dns.rcode'), 'dns.rcode');
});

test('--metrics-listen: per-daemon defaults, env, off, and refusal of nonsense', () => {
  const parse = (name: string, argv: string[], env: Record<string, string> = {}) => {
    const key = `AUTORADIO_${name.toUpperCase()}_METRICS_LISTEN`;
    const saved = process.env[key];
    delete process.env[key];
    Object.assign(process.env, env);
    try {
      const cmd = addDaemonOptions(new Command(name)).exitOverride().configureOutput({ writeErr: () => {} });
      cmd.parse(['--domain', 'radio.test', ...argv], { from: 'user' });
      return cmd.opts<{ metricsListen: string }>().metricsListen;
    } finally {
      for (const k of Object.keys(env)) delete process.env[k];
      if (saved !== undefined) process.env[key] = saved;
    }
  };
  assert.equal(parse('redirectord', []), '127.0.0.1:10291');
  assert.equal(parse('radiod', []), '127.0.0.1:10292');
  assert.equal(parse('radiod', ['--metrics-listen', 'off']), 'off');
  assert.equal(parse('radiod', [], { AUTORADIO_RADIOD_METRICS_LISTEN: '[::1]:9300' }), '[::1]:9300');
  // Each daemon reads its own variable from the shared defaults file.
  assert.equal(parse('redirectord', [], { AUTORADIO_RADIOD_METRICS_LISTEN: '[::1]:9300' }), '127.0.0.1:10291');
  assert.throws(() => parse('radiod', ['--metrics-listen', 'localhost']), /--metrics-listen must be host:port/);
  assert.throws(() => parse('radiod', ['--metrics-listen', '1.2.3.4:70000']), /--metrics-listen/);
  assert.deepEqual(parseMetricsListen('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  assert.equal(parseMetricsListen('OFF'), 'off');
});
