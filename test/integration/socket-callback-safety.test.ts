import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/common/logger.js';
import { createMetrics } from '../../src/common/metrics.js';
import { startMetricsServer } from '../../src/common/metrics-server.js';
import { PrometheusRegistry } from '../../src/common/prometheus.js';
import { Balancer } from '../../src/redirectord/balancer/balancer.js';
import { parsePolicy } from '../../src/redirectord/balancer/policy.js';
import { parseRequestHead } from '../../src/redirectord/http/request-head.js';
import { makeApp, mount, node, state } from '../support/http-fixtures.js';

/**
 * Code that runs inside a socket callback must not throw, whatever arrives: an exception there
 * ends the whole daemon (DNS, front door and every proxied stream together).
 */

class FailingRegistry extends PrometheusRegistry {
  override render(): string {
    throw new Error('render failed');
  }
}

test('a scrape whose rendering fails is answered 500 and the metrics server keeps serving', async (t) => {
  const server = await startMetricsServer('127.0.0.1:0', new FailingRegistry(), createLogger('safety', 'fatal'));
  assert.ok(server);
  t.after(() => server.close());
  for (let i = 0; i < 3; i++) {
    const res: Response = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    assert.equal(res.status, 500);
    await res.text();
  }
  const notFound = await fetch(`http://127.0.0.1:${server.port}/other`);
  assert.equal(notFound.status, 404);
});

test('--statsd with a port dgram would refuse on every send is refused at startup', () => {
  for (const bad of ['127.0.0.1:0', '127.0.0.1:abc', '127.0.0.1:70000']) {
    assert.throws(() => createMetrics(bad, 'redirectord', 'n1', () => {}), /--statsd/, bad);
  }
  const ok = createMetrics('127.0.0.1:8125', 'redirectord', 'n1', () => {});
  void ok.close();
});

test('the listener fast path hands a request over instead of throwing into the front door socket', async (t) => {
  const balancer = new Balancer(parsePolicy('random'), () => 0.5);
  // A balancer that fails (a bug, or a node value nobody foresaw) must not become an exception
  // in the front door's data handler.
  balancer.choose = () => {
    throw new Error('balancer failed');
  };
  const { app, answerListener } = await makeApp(state([node('n1')], [mount('/a.mp3')]), { balancer });
  t.after(() => app.close());
  const parsed = parseRequestHead(Buffer.from('GET /a.mp3 HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1'));
  assert.equal(parsed.kind, 'complete');
  const head = (parsed as Extract<typeof parsed, { kind: 'complete' }>).head;
  assert.equal(answerListener(head, '198.51.100.1', false), undefined);
  // fastify, which gets the request then, answers it with its error handler.
  const res = await app.inject({ url: '/a.mp3' });
  assert.equal(res.statusCode, 500);
});
