import { test } from 'node:test';
import assert from 'node:assert/strict';
import { etcdFlagsFromEnvironment, parseEnvironmentFile } from '../../src/radioctl/config-file.js';
import { invalidEtcdUrl } from '../../src/radioctl/etcd-urls.js';

test('the config file is read as systemd reads it: CRLF, export lines, last assignment wins', () => {
  const flags = etcdFlagsFromEnvironment(
    parseEnvironmentFile(
      'AUTORADIO_ETCD_URLS="https://a:2379"\r\n' +
        // systemd ignores these (an invalid variable name), so the daemons never see them.
        'export AUTORADIO_ETCD_CA=/etc/exported-ca.pem\r\n' +
        'AUTORADIO_ETCD_CERT=/etc/first.pem\nAUTORADIO_ETCD_CERT=/etc/second.pem\n',
    ),
  );
  assert.deepEqual(flags, { etcdUrls: ['https://a:2379'], etcdCert: '/etc/second.pem' });
});

test('an inline comment is part of the value, and the URL it makes is refused as one', () => {
  const flags = etcdFlagsFromEnvironment(parseEnvironmentFile('AUTORADIO_ETCD_URLS="https://a:2379" # main cluster\n'));
  assert.ok(flags.etcdUrls);
  assert.equal(invalidEtcdUrl(flags.etcdUrls), '"https://a:2379"');
});

test('etcd endpoints: http[s]://host[:port] or host[:port], nothing else', () => {
  for (const good of ['http://127.0.0.1:2379', 'https://[::1]:2379', '127.0.0.1:2379', 'etcd1', 'https://etcd.example.org/']) {
    assert.equal(invalidEtcdUrl([good]), undefined, good);
  }
  for (const bad of ['#', '"http://a:1"', 'ftp://a:1', 'http://a:1/path', 'http://a:99999', 'http://user@a:1', 'http://a:1?x']) {
    assert.equal(invalidEtcdUrl(['http://ok:1', bad]), bad, bad);
  }
});
