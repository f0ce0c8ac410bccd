import { test } from 'node:test';
import assert from 'node:assert/strict';
import packet from 'dns-packet';
import { describeCertificate } from '../../src/radioctl/format.js';
import { parseRedirectordOptions } from '../../src/redirectord/options.js';
import { summarizeCertificate, challengeRecordName, isChallengeValue, parseStoredAccount, parseStoredCertificate, type StoredCertificate } from '../../src/coordination/acme.js';
import { ClusterStateBuilder, type KeyChange } from '../../src/coordination/cluster-state-builder.js';
import { ACME_CERTIFICATE_KEY, acmeChallengeKey } from '../../src/coordination/keys.js';
import type { ClusterState } from '../../src/coordination/cluster-state.js';
import { answerQuery, QTYPE, RCODE, type ZoneConfig } from '../../src/redirectord/dns/answers.js';
import { DnsResponder } from '../../src/redirectord/dns/responder.js';
import { decideOrder, renewalTime, retryDelayMs, RETRY_FIRST_MS, RETRY_MAX_MS } from '../../src/redirectord/tls/renewal.js';
import { preferredCertificate } from '../../src/redirectord/tls/certificate-choice.js';
import { ClusterCertificate } from '../../src/redirectord/tls/cluster-certificate.js';
import { checkCertificate, checkNamesZone, type Certificate } from '../../src/redirectord/tls/certificate.js';
import { loggerTo } from '../../src/common/logger.js';
import { before, after } from 'node:test';
import { issuePem, makeTestCa, pairsForThisFile, type TestCa } from '../support/tls.js';
import { RecordingMetrics } from '../support/fixtures.js';

const DAY = 86_400_000;
const V1 = 'a'.repeat(43);
const V2 = 'B-_0123456789abcdefghijklmnopqrstuvwxyzABCDE'.slice(0, 43);

test('renewal: 30 days before expiry for a 90-day certificate, 2/3 of the lifetime for a short one', () => {
  const t0 = Date.UTC(2026, 0, 1);
  assert.equal(renewalTime({ notBefore: t0, notAfter: t0 + 90 * DAY }), t0 + 60 * DAY);
  assert.equal(renewalTime({ notBefore: t0, notAfter: t0 + 365 * DAY }), t0 + 335 * DAY);
  assert.equal(renewalTime({ notBefore: t0, notAfter: t0 + 6 * DAY }), t0 + 4 * DAY);
  assert.equal(renewalTime({ notBefore: t0, notAfter: t0 + 30_000 }), t0 + 20_000);
});

test('order decision: none held -> order; held -> wait until renewal; failures back off exponentially up to 6 h', () => {
  const now = Date.UTC(2026, 0, 10);
  const held = { notBefore: now - 10 * DAY, notAfter: now + 80 * DAY };
  assert.equal(decideOrder({ now, held: undefined, failures: 0 }).kind, 'order');
  assert.deepEqual(decideOrder({ now, held, failures: 0 }), { kind: 'wait', at: now + 50 * DAY, reason: 'the certificate is good until its renewal time' });
  assert.equal(decideOrder({ now: now + 50 * DAY, held, failures: 0 }).kind, 'order');
  const due = { notBefore: now - 70 * DAY, notAfter: now + 20 * DAY };
  assert.equal(decideOrder({ now, held: due, failures: 0 }).kind, 'order');
  // A failure 10 s ago: wait for the first retry, then order.
  const after1 = decideOrder({ now, held: due, failures: 1, lastFailureAt: now - 10_000 });
  assert.deepEqual(after1.kind === 'wait' && after1.at, now - 10_000 + RETRY_FIRST_MS);
  assert.equal(decideOrder({ now: now + RETRY_FIRST_MS, held: due, failures: 1, lastFailureAt: now - 10_000 }).kind, 'order');
  assert.deepEqual([1, 2, 3, 4].map((n) => retryDelayMs(n)), [60_000, 120_000, 240_000, 480_000]);
  assert.equal(retryDelayMs(20), RETRY_MAX_MS);
  assert.equal(retryDelayMs(1000), RETRY_MAX_MS);
  assert.equal(retryDelayMs(0), 0);
});

test('challenge names and values: _acme-challenge.DOMAIN; only 43 base64url characters are values', () => {
  assert.equal(challengeRecordName('radio.example.org'), '_acme-challenge.radio.example.org');
  assert.equal(acmeChallengeKey('tok-1'), '/autoradio/v1/acme/challenge/tok-1');
  assert.ok(isChallengeValue(V1));
  assert.ok(isChallengeValue(V2));
  assert.ok(!isChallengeValue(`${V1}a`));
  assert.ok(!isChallengeValue('"quoted" text that is not a value, 43 chars'));
});

test('stored certificate and account: schema checked, the message says what is wrong', () => {
  const good: StoredCertificate = { domain: 'radio.example.org', cert: 'C', key: 'K', orderedBy: 'n1', storedAt: '2026-01-01T00:00:00Z' };
  assert.deepEqual(parseStoredCertificate(JSON.stringify(good)), good);
  assert.throws(() => parseStoredCertificate('{'), /not JSON/);
  assert.throws(() => parseStoredCertificate(JSON.stringify({ ...good, key: 5 })), /schema/);
  assert.throws(() => parseStoredAccount(JSON.stringify({ directory: 'x' })), /accountKey/);
});

test('which certificate wins: the operator files while good, else the cluster certificate', () => {
  const now = new Date(Date.UTC(2026, 5, 1));
  const until = (days: number) => new Date(now.getTime() + days * DAY);
  const op = { names: 'op', notAfter: until(30) } as Certificate;
  const cl = { names: 'cluster', notAfter: until(60) } as Certificate;
  assert.equal(preferredCertificate(op, cl, now), op);
  assert.equal(preferredCertificate(undefined, cl, now), cl);
  assert.equal(preferredCertificate(op, undefined, now), op);
  assert.equal(preferredCertificate(undefined, undefined, now), undefined);
  // The operator forgot to renew: the cluster's valid certificate takes over, and gives way again
  // once the files hold a new pair.
  const expired = { names: 'op', notAfter: until(-1) } as Certificate;
  assert.equal(preferredCertificate(expired, cl, now), cl);
  assert.equal(preferredCertificate(expired, undefined, now), expired);
  assert.equal(preferredCertificate(expired, { names: 'cluster', notAfter: until(-2) } as Certificate, now), expired);
});

let rev = 100;
function put(key: string, value: string): KeyChange {
  rev++;
  return { type: 'put', key, value, createRevision: String(rev), modRevision: String(rev) };
}
function del(key: string): KeyChange {
  rev++;
  return { type: 'delete', key, value: '', createRevision: '0', modRevision: String(rev) };
}

test('state builder: challenge values from etcd, sorted and deduplicated; junk never answered; a bad certificate value keeps the last', () => {
  const invalid: string[] = [];
  const b = new ClusterStateBuilder((key) => invalid.push(key));
  b.reset([put(acmeChallengeKey('t2'), V2), put(acmeChallengeKey('t1'), V1), put(acmeChallengeKey('t3'), V1)], '200');
  assert.deepEqual(b.snapshot(true).acme, { challenges: [V2, V1].sort() });
  b.apply([put(acmeChallengeKey('t4'), 'not a value')], '201');
  assert.deepEqual(invalid, [acmeChallengeKey('t4')]);
  assert.equal(b.snapshot(true).acme?.challenges.length, 2);
  b.apply([del(acmeChallengeKey('t1')), del(acmeChallengeKey('t2')), del(acmeChallengeKey('t3'))], '202');
  assert.equal(b.snapshot(true).acme, undefined);

  const stored: StoredCertificate = { domain: 'radio.example.org', cert: 'C', key: 'K', orderedBy: 'n1', storedAt: 'now' };
  b.apply([put(ACME_CERTIFICATE_KEY, JSON.stringify(stored))], '203');
  assert.deepEqual(b.snapshot(true).acme?.certificate, stored);
  b.apply([put(ACME_CERTIFICATE_KEY, '{"broken"')], '204');
  assert.deepEqual(b.snapshot(true).acme?.certificate, stored, 'the last valid value stays');
  b.apply([del(ACME_CERTIFICATE_KEY)], '205');
  assert.equal(b.snapshot(true).acme, undefined);
});

const ZONE: ZoneConfig = { domain: 'radio.example.org', nameservers: ['ns1'], ttl: 5 };
function zoneState(challenges: string[]): ClusterState {
  return { mounts: new Map(), nodes: new Map(), master: undefined, revision: '1', connected: true, membershipSerial: 3, ...(challenges.length ? { acme: { challenges } } : {}) };
}
const question = (name: string, qtype: number) => ({ qnameLower: name, qtype, qclass: 1, opcode: 0 });

test('DNS: _acme-challenge.DOMAIN TXT answers the pending values, TTL 0; NODATA for other types; NXDOMAIN with none pending', () => {
  const name = '_acme-challenge.radio.example.org';
  const a = answerQuery(question(name, QTYPE.TXT), zoneState([V1, V2]), ZONE);
  assert.equal(a.rcode, RCODE.NOERROR);
  assert.ok(a.aa);
  assert.deepEqual(a.answer, [V1, V2].map((text) => ({ name, type: 'TXT', ttl: 0, text })));
  const other = answerQuery(question(name, QTYPE.A), zoneState([V1]), ZONE);
  assert.equal(other.rcode, RCODE.NOERROR);
  assert.deepEqual(other.answer, []);
  assert.equal(other.authority[0]?.type, 'SOA');
  const none = answerQuery(question(name, QTYPE.TXT), zoneState([]), ZONE);
  assert.equal(none.rcode, RCODE.NXDOMAIN);
  assert.equal(answerQuery(question(`x.${name}`, QTYPE.TXT), zoneState([V1]), ZONE).rcode, RCODE.NXDOMAIN);
});

test('DNS wire: TXT records decode with an independent decoder, one character-string per value', () => {
  const r = new DnsResponder({ zone: ZONE, state: zoneState([V1, V2]) });
  const q = packet.encode({ type: 'query', id: 9, questions: [{ name: '_acme-challenge.RADIO.example.org', type: 'TXT', class: 'IN' }] });
  const p = packet.decode(r.respond(q, 'udp')!) as unknown as { answers: { type: string; ttl: number; data: Buffer[] }[] };
  assert.deepEqual(p.answers.map((a) => [a.type, a.ttl, a.data.map((d) => d.toString())]), [['TXT', 0, [V1]], ['TXT', 0, [V2]]]);
  r.setState(zoneState([V2]));
  const p2 = packet.decode(r.respond(q, 'udp')!) as unknown as { answers: { data: Buffer[] }[] };
  assert.deepEqual(p2.answers.map((a) => a.data.map((d) => d.toString())), [[V2]], 'a new state is answered at once (no stale cache)');
});

const pairs = pairsForThisFile();

test('certificate from etcd: loaded once; corrupt, foreign key or another domain refused with AR_INVALID_CERTIFICATE, the last good kept', () => {
  const lines: string[] = [];
  const log = loggerTo('test', 'info', { write: (l: string) => void lines.push(l) });
  const metrics = new RecordingMetrics();
  const loaded: Certificate[] = [];
  const cc = new ClusterCertificate({ domain: 'radio.example.org', log, metrics, onCertificate: (c) => loaded.push(c) });
  const stored = (over: Partial<StoredCertificate>): ClusterState => ({
    ...zoneState([]),
    acme: { challenges: [], certificate: { domain: 'radio.example.org', cert: pairs.one.cert, key: pairs.one.key, orderedBy: 'n1', storedAt: 'now', ...over } },
  });
  cc.update(stored({}));
  assert.equal(loaded.length, 1);
  assert.equal(cc.certificate?.cert, pairs.one.cert);
  cc.update(stored({ storedAt: 'later' })); // same pair: nothing to do
  assert.equal(loaded.length, 1);
  for (const bad of [{ key: pairs.two.key }, { cert: pairs.one.cert.slice(0, 100) }, { domain: 'other.example.org', cert: pairs.two.cert, key: pairs.two.key }]) {
    cc.update(stored(bad));
    assert.equal(cc.certificate?.cert, pairs.one.cert, 'the last good certificate stays');
  }
  assert.equal(loaded.length, 1);
  const refusals = lines.filter((l) => l.includes('TLS certificate refused'));
  assert.equal(refusals.length, 3);
  assert.ok(refusals.every((l) => l.includes('AR_INVALID_CERTIFICATE')));
  assert.match(refusals[0]!, /does not match/);
  assert.match(refusals[1]!, /not a PEM X\.509/);
  assert.match(refusals[2]!, /ordered for other\.example\.org/);
  cc.update(stored({ cert: pairs.two.cert, key: pairs.two.key }));
  assert.equal(cc.certificate?.cert, pairs.two.cert);
  assert.equal(loaded.length, 2);
  assert.equal(checkCertificate(pairs.two.cert, pairs.two.key, 'x').names, cc.certificate?.names);
});

test('radioctl status: the certificate summary names the domain, expiry and orderer, never the key', () => {
  const now = Date.now();
  const summary = summarizeCertificate({ domain: 'radio.example.org', cert: pairs.one.cert, key: pairs.one.key, orderedBy: 'n2', storedAt: '2026-01-01T00:00:00.000Z' }, now)!;
  const notAfter = checkCertificate(pairs.one.cert, pairs.one.key, 'x').notAfter;
  assert.equal(summary.notAfter, notAfter.toISOString());
  assert.equal(summary.expiresInSeconds, Math.floor((notAfter.getTime() - now) / 1000));
  assert.doesNotMatch(JSON.stringify(summary), /PRIVATE KEY/);
  const line = describeCertificate(summary);
  assert.match(line, /^https: certificate for radio\.example\.org \(.*DNS:\*\.radio\.example\.org.*\) expires \S+, in 1 day; ordered by n2/);
  assert.match(describeCertificate({ ...summary, expiresInSeconds: -5 }), /EXPIRED/);
  assert.match(describeCertificate({ ...summary, expiresInSeconds: 600 }), /in 10 minutes/);
  assert.match(describeCertificate({ ...summary, expiresInSeconds: 40 * 86400 + 5 }), /in 40 days/);
  assert.match(describeCertificate(undefined), /no cluster certificate/);
  assert.equal(summarizeCertificate(undefined, now), undefined);
  assert.equal(summarizeCertificate({ ...{ domain: 'd', cert: 'junk', key: 'k', orderedBy: 'n', storedAt: 's' } }, now)?.names, '(unreadable certificate)');
});

test('redirectord flags: --acme-directory must be an http(s) URL; --acme-email and --acme-ca-file need it', () => {
  const base = ['node', 'redirectord', '--domain', 'radio.test', '--name', 'n1', '--ip', '192.0.2.1'];
  const saved = Object.entries(process.env).filter(([k]) => k.startsWith('AUTORADIO_'));
  for (const [k] of saved) delete process.env[k];
  try {
    const o = parseRedirectordOptions([...base, '--acme-directory', 'https://acme-v02.api.letsencrypt.org/directory', '--acme-email', 'ops@radio.test', '--acme-ca-file', '/etc/ca.pem']);
    assert.equal(o.acmeDirectory, 'https://acme-v02.api.letsencrypt.org/directory');
    assert.equal(o.acmeEmail, 'ops@radio.test');
    assert.equal(o.acmeCaFile, '/etc/ca.pem');
    assert.equal(parseRedirectordOptions(base).acmeDirectory, undefined);
    assert.throws(() => parseRedirectordOptions([...base, '--acme-directory', 'letsencrypt']), /--acme-directory must be an http\(s\) URL/);
    assert.throws(() => parseRedirectordOptions([...base, '--acme-email', 'ops@radio.test']), /need --acme-directory/);
    assert.throws(() => parseRedirectordOptions([...base, '--acme-ca-file', '/etc/ca.pem']), /need --acme-directory/);
  } finally {
    for (const [k, v] of saved) process.env[k] = v;
  }
});

let otherCa: TestCa | undefined;
const foreign: { leaf?: { cert: string; key: string }; apexOnly?: { cert: string; key: string } } = {};
before(async () => {
  otherCa = await makeTestCa();
  foreign.leaf = await issuePem(otherCa, 'foreign', ['evil.example.net', '*.evil.example.net']);
  foreign.apexOnly = await issuePem(otherCa, 'apex-only', ['radio.example.org']);
});
after(() => otherCa?.remove());

test('certificate from etcd: a leaf that does not name DOMAIN and *.DOMAIN is refused even when the domain field says DOMAIN', () => {
  const lines: string[] = [];
  const log = loggerTo('test', 'info', { write: (l: string) => void lines.push(l) });
  const loaded: Certificate[] = [];
  const cc = new ClusterCertificate({ domain: 'radio.example.org', log, metrics: new RecordingMetrics(), onCertificate: (c) => loaded.push(c) });
  const stored = (pair: { cert: string; key: string }): ClusterState => ({
    ...zoneState([]),
    acme: { challenges: [], certificate: { domain: 'radio.example.org', ...pair, orderedBy: 'n1', storedAt: 'now' } },
  });
  cc.update(stored(pairs.one));
  for (const bad of [foreign.leaf!, foreign.apexOnly!]) {
    cc.update(stored(bad));
    assert.equal(cc.certificate?.cert, pairs.one.cert, 'the last good certificate stays');
  }
  assert.equal(loaded.length, 1);
  const refusals = lines.filter((l) => l.includes('TLS certificate refused'));
  assert.equal(refusals.length, 2);
  assert.match(refusals[0]!, /names DNS:evil\.example\.net.*not radio\.example\.org and \*\.radio\.example\.org/);
  assert.match(refusals[1]!, /AR_INVALID_CERTIFICATE/);
  assert.doesNotThrow(() => checkNamesZone(pairs.one.cert, 'radio.example.org', 'x'));
  assert.throws(() => checkNamesZone(pairs.one.cert, 'example.org', 'x'), /not example\.org/);
});

test('DNS wire: challenge values in mixed case, over UDP, EDNS and TCP; many values fall back to TCP; no other name shows them', () => {
  const values = Array.from({ length: 1000 }, (_, i) => i.toString(36).padStart(43, 'x')).sort();
  const r = new DnsResponder({ zone: ZONE, state: zoneState(values) });
  const ask = (name: string, type: string, transport: 'udp' | 'tcp', edns = false) => {
    const q = packet.encode({ type: 'query', id: 7, questions: [{ name, type: type as 'TXT', class: 'IN' }], ...(edns ? { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as never] } : {}) });
    return packet.decode(r.respond(q, transport)!) as unknown as { rcode: string; flag_tc: boolean; answers: { data: Buffer[] }[]; authorities: unknown[] };
  };
  const mixed = '_ACME-Challenge.Radio.EXAMPLE.org';
  // 56 bytes a value: 8 fit in 512 bytes, 20 in 1232; 1000 need 56 kB, still one TCP message.
  for (const edns of [false, true]) {
    const udp = ask(mixed, 'TXT', 'udp', edns);
    assert.ok(udp.flag_tc, 'too many for UDP: truncated, so the CA retries over TCP');
    assert.equal(udp.answers.length, 0);
  }
  const tcp = ask(mixed, 'TXT', 'tcp');
  assert.equal(tcp.flag_tc, false);
  assert.deepEqual(tcp.answers.map((a) => a.data.map((d) => d.toString()).join('')), values);
  for (const [name, type] of [['radio.example.org', 'TXT'], ['radio.example.org', 'ANY'], ['x._acme-challenge.radio.example.org', 'TXT'],
    ['_acme-challenge.x.radio.example.org', 'TXT'], ['_acme-challenge.radio.example.org', 'AXFR']] as const) {
    const a = ask(name, type, 'tcp');
    const texts = a.answers.flatMap((x) => (Array.isArray(x.data) ? x.data.map((d) => d.toString()) : []));
    assert.ok(!texts.some((t) => values.includes(t)), `${name} ${type} shows no pending value`);
  }
});
