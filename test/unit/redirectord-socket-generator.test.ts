import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { intFlag } from '../../src/common/flags.js';

const GENERATOR = new URL('../../debian/redirectord-socket-generator', import.meta.url).pathname;
const execFileAsync = promisify(execFile);

interface Generated {
  /** ListenStream= of the written socket, undefined when the generator wrote none. */
  listen?: string;
  unit?: string;
  stderr: string;
}

/**
 * Runs the generator with sh, as systemd does, against `defaults` (undefined: no file) in a
 * temporary directory: the script is the packaged one with only its config path changed.
 */
async function generate(defaults: string | Buffer | undefined, timeoutMs = 30_000): Promise<Generated> {
  const dir = await mkdtemp(join(tmpdir(), 'socket-generator-'));
  try {
    const config = join(dir, 'autoradio');
    const script = (await readFile(GENERATOR, 'utf8')).replace(/^config=.*$/m, `config=${config}`);
    assert.notEqual(script, await readFile(GENERATOR, 'utf8'), 'the generator names its config file on a config= line');
    await writeFile(join(dir, 'generator'), script);
    if (defaults !== undefined) await writeFile(config, defaults);
    for (const sub of ['normal', 'early', 'late']) await mkdir(join(dir, sub));
    const { stderr } = await execFileAsync('sh', [join(dir, 'generator'), join(dir, 'normal'), join(dir, 'early'), join(dir, 'late')], { timeout: timeoutMs });
    const written = await readdir(join(dir, 'normal'));
    if (written.length === 0) return { stderr };
    assert.deepEqual(written.sort(), ['redirectord.socket', 'sockets.target.wants']);
    const unit = await readFile(join(dir, 'normal/redirectord.socket'), 'utf8');
    const listens = unit.split('\n').filter((l) => l.startsWith('ListenStream='));
    assert.equal(listens.length, 1, unit);
    return { listen: listens[0]!.slice('ListenStream='.length), unit, stderr };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The port redirectord itself takes from the value systemd gives it (undefined: it refuses). */
function redirectordPort(valueAsSystemdGivesIt: string): number | undefined {
  try {
    return intFlag('--http-port', 1, 65535)(valueAsSystemdGivesIt);
  } catch {
    return undefined;
  }
}

test('the socket listens on the port redirectord takes from the same file, or there is no socket', async () => {
  // [line in the file, the value systemd's EnvironmentFile= gives AUTORADIO_HTTP_PORT]
  const cases: Array<[string, string]> = [
    ['AUTORADIO_HTTP_PORT=8080', '8080'],
    ['AUTORADIO_HTTP_PORT= 8080', '8080'],
    ['AUTORADIO_HTTP_PORT = 8080', '8080'],
    ['  AUTORADIO_HTTP_PORT=8080  ', '8080'],
    ['AUTORADIO_HTTP_PORT="8080"\r', '8080'],
    ["AUTORADIO_HTTP_PORT='8080'", '8080'],
    ['AUTORADIO_HTTP_PORT= "8080" ', '8080'],
    ['AUTORADIO_HTTP_PORT="80"80', '8080'],
    ['AUTORADIO_HTTP_PORT=80\\80', '8080'],
    ['AUTORADIO_HTTP_PORT=" 80"', ' 80'],
    ['AUTORADIO_HTTP_PORT=080', '080'],
    ['AUTORADIO_HTTP_PORT=0', '0'],
    ['AUTORADIO_HTTP_PORT=65535', '65535'],
    ['AUTORADIO_HTTP_PORT=65536', '65536'],
    ['AUTORADIO_HTTP_PORT=99999999999999999999', '99999999999999999999'],
    ['AUTORADIO_HTTP_PORT=', ''],
    ['AUTORADIO_HTTP_PORT=""', ''],
    ['AUTORADIO_HTTP_PORT=-80', '-80'],
    ['AUTORADIO_HTTP_PORT=8080 # the web port', '8080 # the web port'],
    ['AUTORADIO_HTTP_PORT=0x50', '0x50'],
    ['AUTORADIO_HTTP_PORT=$(echo 81)', '$(echo 81)'],
    ['AUTORADIO_HTTP_PORT=81\nAUTORADIO_HTTP_PORT=82', '82'],
  ];
  for (const [line, value] of cases) {
    const expected = redirectordPort(value);
    const got = await generate(`DOMAIN=radio.example.org\n${line}\n`);
    assert.equal(got.listen, expected === undefined ? undefined : String(expected), JSON.stringify(line));
    assert.equal(got.stderr, '', JSON.stringify(line));
  }
});

test('assignments systemd does not make leave the default port', async () => {
  for (const line of [
    '#AUTORADIO_HTTP_PORT=8080',
    ';AUTORADIO_HTTP_PORT=8080',
    // An invalid variable name for systemd; the file itself says: no export.
    'export AUTORADIO_HTTP_PORT=8080',
    // Inside another variable's quoted value, which spans the line.
    'AUTORADIO_NAME="node1\nAUTORADIO_HTTP_PORT=8080"',
    'AUTORADIO_HTTP_PORTS=8080',
  ]) {
    assert.equal((await generate(`DOMAIN=radio.example.org\n${line}\n`)).listen, '80', JSON.stringify(line));
  }
  // Since systemd 254 a backslash at the end of a comment does not swallow the next line.
  assert.equal((await generate('DOMAIN=radio.example.org\n# web \\\nAUTORADIO_HTTP_PORT=8080\n')).listen, '8080');
});

test('the address is written only as an IP literal systemd parses; a "%" never reaches the unit', async () => {
  const cases: Array<[string, string | undefined]> = [
    ['192.0.2.10', '192.0.2.10:80'],
    ['"192.0.2.10"', '192.0.2.10:80'],
    ['192.0.2.10 ', '192.0.2.10:80'],
    ['2001:db8::10', '[2001:db8::10]:80'],
    ['::', '[::]:80'],
    // Host names (systemd resolves none), brackets, spaces, an IPv6 zone (systemd 257 refuses
    // "[fe80::1%lo]:80"; "%h" would be a specifier, the home directory): no socket.
    ['fe80::1%eth0', undefined],
    ['fe80::1%h', undefined],
    ['localhost', undefined],
    ['[::1]', undefined],
    ['"192.0.2.10 "', undefined],
    ['"192.0.2.10 192.0.2.11"', undefined],
    ['fe80::1%', undefined],
    ['fe80::1%eth0%x', undefined],
    ['%eth0', undefined],
    ['192.0.2', undefined],
    ['192.0.2.10.1', undefined],
    ['192.0.2.10:81', undefined],
    ['"192.0.2.10\nListenDatagram=53"', undefined],
  ];
  for (const [value, expected] of cases) {
    const got = await generate(`DOMAIN=radio.example.org\nAUTORADIO_HTTP_BIND=${value}\n`);
    assert.equal(got.listen, expected, JSON.stringify(value));
  }
});

test('DOMAIN decides whether there is a socket, whatever it holds; its value never reaches the unit', async () => {
  const hostile = ['"a b"', "'it''s'", '$(touch /tmp/generator-ran)', '`id`', 'x;ListenStream=1', '"x\nListenStream=1"', 'x\r'];
  for (const value of hostile) {
    const got = await generate(`DOMAIN=${value}\n`);
    assert.equal(got.listen, '80', value);
    assert.doesNotMatch(got.unit!, /ListenStream=1|a b|touch|id`/, value);
  }
  for (const defaults of [undefined, '', 'DOMAIN=\n', 'DOMAIN=""\n', 'DOMAIN=   \n', '#DOMAIN=x\n', 'export DOMAIN=x\n', 'DOMAIN=x\nDOMAIN=\n']) {
    assert.equal((await generate(defaults)).listen, undefined, JSON.stringify(defaults));
  }
});

test('systemd ignores an assignment that is not UTF-8, and so does the generator', async () => {
  const latin1 = (text: string) => Buffer.from(text, 'latin1');
  // systemd 257: "invalid UTF-8 value for key DOMAIN ..., ignoring": DOMAIN stays unset, the
  // units skip their start, and nothing may hold port 80.
  assert.equal((await generate(latin1('DOMAIN=r\xe9dio.example.org\n'))).listen, undefined);
  assert.equal((await generate(latin1('DOMAIN=radio.example.org\r\nDOMAIN=r\xe9dio\r\n'))).listen, '80');
  assert.equal((await generate(latin1('DOMAIN=x\nAUTORADIO_HTTP_PORT=81\nAUTORADIO_HTTP_PORT=8\xe90\n'))).listen, '81');
  assert.equal((await generate(latin1('DOMAIN=x\nAUTORADIO_HTTP_BIND="127.0.0.1\xa0"\n'))).listen, '80');
  // Overlong forms and UTF-16 surrogates are not UTF-8 either; real multi-byte text is.
  assert.equal((await generate(latin1('DOMAIN=\xc0\xaf\n'))).listen, undefined);
  assert.equal((await generate(latin1('DOMAIN=\xed\xa0\x80\n'))).listen, undefined);
  assert.equal((await generate(latin1('DOMAIN=\xf4\x90\x80\x80\n'))).listen, undefined);
  assert.equal((await generate(Buffer.from('DOMAIN=rädio.example.org 📻\n'))).listen, '80');
});

test('a huge file does not hold up boot or daemon-reload (systemd waits for its generators)', async () => {
  const big = 'x'.repeat(1 << 20);
  const cases: Array<[string, string | undefined]> = [
    // Another variable's long value, and many lines: the generator skips them in linear time.
    [`DOMAIN=radio.example.org\nAUTORADIO_NAME=${big}\nAUTORADIO_HTTP_PORT=81\n`, '81'],
    [`DOMAIN=radio.example.org\nAUTORADIO_NAME="${big}"\n`, '80'],
    [`DOMAIN=radio.example.org\n${'# a comment line\n'.repeat(60_000)}AUTORADIO_HTTP_PORT=82\n`, '82'],
    [`${' '.repeat(1 << 20)}DOMAIN${' '.repeat(1 << 20)}=radio.example.org\n`, '80'],
    [`DOMAIN=radio.example.org\n${'K'.repeat(1 << 20)}=1\n`, '80'],
    // A value longer than execve(2) takes (128 KiB with its name) cannot reach redirectord,
    // which then cannot start at all: no socket.
    [`DOMAIN=${big}\n`, undefined],
    [`DOMAIN=radio.example.org\nAUTORADIO_HTTP_PORT=${'0'.repeat(1 << 20)}80\n`, undefined],
    [`DOMAIN=radio.example.org\nAUTORADIO_HTTP_PORT=${'0'.repeat(1 << 10)}80\n`, '80'],
  ];
  for (const [text, expected] of cases) {
    const since = Date.now();
    const got = await generate(text);
    assert.equal(got.listen, expected, `${text.slice(0, 40)}... (${text.length} bytes)`);
    assert.ok(Date.now() - since < 15_000, `${Date.now() - since} ms for ${text.slice(0, 40)}...`);
  }
});
