import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderLine, stdoutIsJournal, syslogPriority, textLine } from '../../src/common/log-output.js';
import { loggerTo } from '../../src/common/logger.js';

function captured(level = 'debug') {
  const lines: string[] = [];
  const log = loggerTo('radiod', level, { write: (l: string) => lines.push(l) });
  return { log, lines };
}

/** Every key of one JSON object line, in order, duplicates included (JSON.parse hides them). */
function topLevelKeys(line: string): string[] {
  return [...line.matchAll(/[{,]"([A-Za-z_]+)":/g)].map((m) => m[1]!);
}

test('a child that rebinds a key its parent has writes that key once, with the child value', () => {
  const { log, lines } = captured();
  const transcoders = log.child({ node: 'n1' }).child({ component: 'transcoders' });
  transcoders.child({ component: 'transcoder', mount: '/a.mp3' }).info('started');
  const keys = topLevelKeys(lines[0]!);
  assert.deepEqual(keys.filter((k, i) => keys.indexOf(k) !== i), []);
  const event = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(event['component'], 'transcoder');
  assert.equal(event['mount'], '/a.mp3');
  assert.equal(event['node'], 'n1');
  assert.equal(event['program'], 'radiod');
});

test('children keep the level set on their parent, and redaction', () => {
  const { log, lines } = captured('info');
  const child = log.child({ component: 'x' });
  child.level = 'warn';
  child.child({ mount: '/m' }).info('dropped');
  child.child({ mount: '/m' }).warn({ password: 'hunter22' }, 'kept');
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /"password":"\[redacted\]"/);
});

test('pino levels map to syslog priorities', () => {
  assert.deepEqual([60, 50, 40, 30, 20, 10].map(syslogPriority), [2, 3, 4, 6, 7, 7]);
});

test('on the journal every line starts with its priority; elsewhere JSON passes unchanged', () => {
  const json = '{"level":50,"time":"t","program":"redirectord","msg":"boom"}\n';
  assert.equal(renderLine(json, { format: 'json', journal: true }), `<3>${json}`);
  assert.equal(renderLine(json, { format: 'json', journal: false }), json);
  assert.equal(renderLine(json.replace('50', '30'), { format: 'json', journal: true }).slice(0, 3), '<6>');
});

test('text lines read as time, level, program/component, message, then the fields', () => {
  const event = { level: 40, time: '2026-12-04T16:00:00.000Z', name: 'radiod', program: 'radiod', component: 'icecast', node: 'n1', msg: 'reload failed', err: 'no such file', code: 2 };
  assert.equal(textLine(event), '2026-12-04T16:00:00.000Z WARN radiod/icecast: reload failed node=n1 err="no such file" code=2');
  const line = renderLine(JSON.stringify({ ...event, level: 50, msg: 'two\nlines' }) + '\n', { format: 'text', journal: true });
  assert.match(line, /^<3>\S+ ERROR radiod\/icecast: two\\nlines /);
  assert.equal(line.split('\n').length, 2);
});

test('stdout is the journal only when JOURNAL_STREAM names its device and inode', () => {
  assert.equal(stdoutIsJournal('8:1234', { dev: 8, ino: 1234 }), true);
  assert.equal(stdoutIsJournal('8:1234', { dev: 8, ino: 99 }), false);
  assert.equal(stdoutIsJournal(undefined, { dev: 8, ino: 1234 }), false);
});
