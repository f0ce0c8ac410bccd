import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CommanderError } from 'commander';
import { BrokenCircuitError } from 'cockatiel';
import { GRPCDeadlineExceededError, GRPCUnavailableError } from 'etcd3';
import { AutoradioError, ErrorCode } from '../../src/common/errors.js';
import { classifyEtcdFailure } from '../../src/coordination/etcd-failure.js';
import { describeFailure, failureLine } from '../../src/radioctl/failure.js';
import { etcdFlagsFromEnvironment, parseEnvironmentFile } from '../../src/radioctl/config-file.js';

const codes = Object.values(ErrorCode);

test('every error code is unique, well formed and listed in README', () => {
  assert.equal(new Set(codes).size, codes.length, 'codes are unique');
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('### Error codes'));
  const documented = [...section.matchAll(/^\| `(AR_[A-Z_]+)` \|/gm)].map((m) => m[1]);
  for (const code of codes) {
    assert.match(code, /^AR_[A-Z_]+$/);
    assert.ok(documented.includes(code), `${code} is documented in README`);
  }
  assert.deepEqual(documented.filter((c) => !(codes as readonly string[]).includes(c!)), [], 'README lists no unknown code');
});

test('failures are one line, with the code, as text or JSON', () => {
  const f = describeFailure(new AutoradioError(ErrorCode.mountExists, 'mount /a.mp3 already exists'), { etcdUrls: ['http://x:2379'] });
  assert.deepEqual(f, { code: 'AR_MOUNT_EXISTS', message: 'mount /a.mp3 already exists', status: 1 });
  assert.equal(failureLine(f, false), 'radioctl: mount /a.mp3 already exists [AR_MOUNT_EXISTS]');
  assert.equal(failureLine({ ...f, message: 'two\nlines' }, false), 'radioctl: two lines [AR_MOUNT_EXISTS]');
  assert.deepEqual(JSON.parse(failureLine(f, true)), { error: { code: 'AR_MOUNT_EXISTS', message: 'mount /a.mp3 already exists' } });
  const usage = describeFailure(new CommanderError(1, 'commander.unknownCommand', "error: unknown command 'x'"), { etcdUrls: [] });
  assert.deepEqual(usage, { code: 'AR_USAGE', message: "unknown command 'x'", status: 2 });
  assert.equal(describeFailure(new Error('boom'), { etcdUrls: [] }).code, 'AR_INTERNAL');
});

test('etcd failures are told apart by type, not by message', () => {
  const down = describeFailure(new GRPCUnavailableError('14 UNAVAILABLE: connect ECONNREFUSED 127.0.0.1:1'), { etcdUrls: ['https://e:2379'] });
  assert.equal(down.code, 'AR_ETCD_UNAVAILABLE');
  assert.match(down.message, /^etcd is unreachable at https:\/\/e:2379 \(connection refused\); nothing was changed; .*--etcd-cert/);
  assert.equal(classifyEtcdFailure(new BrokenCircuitError()), 'unreachable');
  assert.equal(classifyEtcdFailure(new GRPCDeadlineExceededError('deadline')), 'unanswered');
  // A message that merely mentions the words is not an etcd failure.
  assert.equal(classifyEtcdFailure(new Error('deadline exceeded: circuit unavailable ECONNREFUSED')), 'other');
});

test('the config file: systemd EnvironmentFile lines; only the etcd variables are taken', () => {
  const values = parseEnvironmentFile(
    '# comment\nDOMAIN=radio.test\nAUTORADIO_ETCD_URLS="https://a:2379, https://b:2379"\n' +
      "AUTORADIO_ETCD_CA='/etc/ca.pem'\n  AUTORADIO_ETCD_CERT = /etc/c.pem\nAUTORADIO_ETCD_KEY=\nnot a line\n",
  );
  assert.deepEqual(etcdFlagsFromEnvironment(values), {
    etcdUrls: ['https://a:2379', 'https://b:2379'],
    etcdCa: '/etc/ca.pem',
    etcdCert: '/etc/c.pem',
  });
});
