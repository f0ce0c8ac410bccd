import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AutoradioError, ErrorCode } from '../../src/common/errors.js';
import { checkCertificate } from '../../src/redirectord/tls/certificate.js';
import { pairsForThisFile } from '../support/tls.js';
import { buildStatusView } from '../../src/redirectord/http/status-view.js';
import { state } from '../support/http-fixtures.js';
import { PrometheusRegistry } from '../../src/common/prometheus.js';
import { EXPIRY_GAUGE, registerCertificateGauge } from '../../src/redirectord/tls/certificate-metrics.js';

const pairs = pairsForThisFile();

function refusedWith(why: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof AutoradioError);
    assert.equal(err.code, ErrorCode.invalidCertificate);
    assert.match(err.message, why);
    assert.match(err.message, /from the files/);
    return true;
  };
}

test('a matching pair is accepted with its names and expiry', () => {
  const c = checkCertificate(pairs.one.cert, pairs.one.key, 'the files');
  assert.match(c.names, /DNS:\*\.radio\.example\.org/);
  assert.ok(c.notAfter.getTime() > Date.now() + 24 * 3600_000);
});

test('a corrupt certificate, a corrupt key, a key of another certificate and an expired one are refused, saying why', () => {
  assert.throws(() => checkCertificate('-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n', pairs.one.key, 'the files'), refusedWith(/not a PEM X\.509/));
  assert.throws(() => checkCertificate(pairs.one.cert.slice(0, 200), pairs.one.key, 'the files'), refusedWith(/not a PEM X\.509/));
  assert.throws(() => checkCertificate(pairs.one.cert, 'garbage', 'the files'), refusedWith(/not a PEM private key/));
  assert.throws(() => checkCertificate(pairs.one.cert, pairs.two.key, 'the files'), refusedWith(/does not match/));
  assert.throws(() => checkCertificate(pairs.one.cert, pairs.one.key, 'the files', new Date(Date.now() + 10 * 24 * 3600_000)), refusedWith(/expired/));
});

test('the expiry gauge counts the seconds left on the certificate in use, and is absent without one', () => {
  const registry = new PrometheusRegistry();
  let current: ReturnType<typeof checkCertificate> | undefined;
  registerCertificateGauge(registry, () => current, () => Date.parse('2030-01-01T00:00:00Z'));
  assert.doesNotMatch(registry.render(), new RegExp(`^${EXPIRY_GAUGE} `, 'm'));
  current = { ...checkCertificate(pairs.one.cert, pairs.one.key, 'the files'), notAfter: new Date('2030-01-31T00:00:00Z') };
  assert.match(registry.render(), new RegExp(`^${EXPIRY_GAUGE} 2592000$`, 'm'));
});

test('the status view shows the certificate expiry only when HTTPS has a certificate', () => {
  const s = state([], []);
  const now = Date.parse('2030-01-01T00:00:00Z');
  const without = buildStatusView(s, { domain: 'r.test', nodeName: 'n', httpPort: 80, now });
  assert.equal(without.https, undefined);
  const withCert = buildStatusView(s, { domain: 'r.test', nodeName: 'n', httpPort: 80, now, certificateNotAfter: new Date('2030-01-02T00:00:00Z') });
  assert.deepEqual(withCert.https, { certificateNotAfter: '2030-01-02T00:00:00.000Z', certificateExpiresInSeconds: 86_400 });
});
