import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeadReader } from '../../src/redirectord/http/head-reader.js';
import { findHeadEnd } from '../../src/redirectord/http/request-head.js';

function feed(reader: HeadReader, bytes: Buffer, step: number) {
  let last = reader.progress();
  for (let i = 0; i < bytes.length && last.kind === 'incomplete'; i += step) last = reader.push(bytes.subarray(i, i + step));
  return last;
}

test('the head end is found whatever the chunking, as findHeadEnd finds it in one piece', () => {
  const heads = [
    'GET / HTTP/1.1\r\nHost: x\r\n\r\nbody',
    'SOURCE /m HTTP/1.0\nA: b\nC: d\r\n\r\naudio',
    '\r\n\r\nGET /x HTTP/1.0\n\nrest',
    'GET / HTTP/1.1\r\nX: \r\r\n\r\n',
  ];
  for (const text of heads) {
    const bytes = Buffer.from(text, 'latin1');
    const expected = findHeadEnd(bytes);
    assert.ok(expected > 0, text);
    for (const step of [1, 2, 3, 5, 7, bytes.length]) {
      const r = feed(new HeadReader(16_384), bytes, step);
      assert.equal(r.kind, 'complete', `${JSON.stringify(text)} in ${step}-byte chunks`);
      if (r.kind === 'complete') {
        assert.equal(r.headEnd, expected, `${JSON.stringify(text)} in ${step}-byte chunks`);
        assert.equal(r.bytes.subarray(0, r.headEnd).toString('latin1'), text.slice(0, expected));
      }
    }
  }
});

test('bytes already read (pipelined) are used as they are; more than the limit is too large', () => {
  const r = new HeadReader(100, Buffer.from('GET /a HTTP/1.1\r\n\r\nGET /b'));
  const p = r.progress();
  assert.equal(p.kind, 'complete');
  assert.equal(p.kind === 'complete' && p.headEnd, 19);
  const big = new HeadReader(100);
  assert.equal(big.push(Buffer.from(`GET / HTTP/1.1\r\nX: ${'a'.repeat(90)}`)).kind, 'too-large');
  const blanks = new HeadReader(100);
  assert.equal(blanks.push(Buffer.from('\r\n'.repeat(40))).kind, 'incomplete');
  assert.equal(blanks.firstByte(), -1);
  assert.equal(blanks.push(Buffer.from('\r\n'.repeat(20))).kind, 'too-large');
});

test('work is linear in the bytes received: a 16 KiB head in 1- and 2-byte chunks', () => {
  const lines = [];
  for (let i = 0; lines.join('').length < 16_000; i++) lines.push(`X-${i}: y\r\n`);
  const head = Buffer.from(`GET / HTTP/1.1\r\n${lines.join('')}\r\n`, 'latin1');
  for (const step of [1, 2]) {
    const reader = new HeadReader(16_384);
    const r = feed(reader, head, step);
    assert.equal(r.kind, 'complete');
    // Each byte is looked at about once (a split terminator re-reads at most two bytes).
    assert.ok(reader.examined <= head.length * 3, `${reader.examined} bytes examined for a ${head.length}-byte head`);
  }
  // Leading blank lines, dribbled, are skipped once too.
  const blank = new HeadReader(16_384);
  feed(blank, Buffer.from('\r\n'.repeat(8000)), 2);
  assert.ok(blank.examined <= 16_000 * 3, `${blank.examined} examined`);
});
