import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judgeSourceAuth, parseSourceAuthForm } from '../../src/radiod/source-auth/verdict.js';
import type { Mount } from '../../src/coordination/mount.js';

const mounts = new Map<string, Mount>([['/test', { path: '/test', username: 'source', password: 'pw' }]]);

/** The bodies icecast2 2.4.4 posted, captured: `SOURCE /test` and `SOURCE /%74est`. */
const SOURCE_BODY = 'action=stream_auth&mount=%2ftest&ip=127%2e0%2e0%2e1&server=localhost&port=8000&user=source&pass=pw';
const ESCAPED_SOURCE_BODY = `${SOURCE_BODY}&admin=1`;

test('a source with the right credentials is let in on the master only', () => {
  const req = parseSourceAuthForm(SOURCE_BODY);
  assert.deepEqual(judgeSourceAuth(req, mounts, true), { allow: true });
  assert.deepEqual(judgeSourceAuth(req, mounts, false), { allow: false, reason: 'not master' });
});

test('a source sent to a percent-escaped path (Icecast flags it admin=1) is refused on a node that may not take sources', () => {
  const req = parseSourceAuthForm(ESCAPED_SOURCE_BODY);
  assert.equal(req.admin, true);
  assert.deepEqual(judgeSourceAuth(req, mounts, false), { allow: false, reason: 'not master' });
  assert.deepEqual(judgeSourceAuth(req, mounts, true), { allow: true });
});

test('wrong credentials, unknown mounts and malformed forms are refused even on the master', () => {
  const wrong = parseSourceAuthForm(SOURCE_BODY.replace('pass=pw', 'pass=pX'));
  assert.deepEqual(judgeSourceAuth(wrong, mounts, true), { allow: false, reason: 'wrong credentials' });
  const unknown = parseSourceAuthForm(SOURCE_BODY.replace('%2ftest', '%2fother'));
  assert.deepEqual(judgeSourceAuth(unknown, mounts, true), { allow: false, reason: 'unknown mount' });
  const noPass = parseSourceAuthForm(SOURCE_BODY.replace('&pass=pw', ''));
  assert.deepEqual(judgeSourceAuth(noPass, mounts, true), { allow: false, reason: 'malformed request' });
});
