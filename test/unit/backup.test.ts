import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AutoradioError, ErrorCode } from '../../src/common/errors.js';
import { parseBackup } from '../../src/coordination/backup.js';
import type { Mount } from '../../src/coordination/mount.js';

const live: Mount = { path: '/live.mp3', username: 'source', password: 'live-password-1' };
const backupMount: Mount = { path: '/backup.mp3', username: 'source', password: 'backup-password-1' };
const withFallback: Mount = { path: '/show.mp3', username: 'source', password: 'show-password-1', fallback: '/backup.mp3' };
const low: Mount = {
  path: '/live-low.ogg',
  username: 'source',
  password: 'low-password-1',
  transcoding: { source: '/live.mp3', codec: 'vorbis', bitrate: 64, samplerate: 44100, channels: 2, quality: 0.3 },
};
const relay: Mount = { path: '/relay.mp3', username: 'source', password: 'relay-password', relayUrl: 'http://example.com/x' };

/** Asserts parseBackup refuses `input` with an invalidBackup error whose message matches `re`. */
function refused(input: unknown, re: RegExp): void {
  assert.throws(
    () => parseBackup(input),
    (err: unknown) => {
      assert.ok(err instanceof AutoradioError, String(err));
      assert.equal(err.code, ErrorCode.invalidBackup);
      assert.match(err.message, /^invalid backup: /);
      assert.match(err.message, /nothing was written$/);
      assert.match(err.message, re);
      assert.doesNotMatch(err.message, /\n/);
      return true;
    },
  );
}

test('a good backup is accepted whatever the order of references', () => {
  // The fallback and the transcoding source come after the mounts that use them.
  const input = { version: 1, mounts: [withFallback, low, live, backupMount, relay] };
  const parsed = parseBackup(structuredClone(input));
  assert.equal(parsed.version, 1);
  assert.deepEqual(parsed.mounts, input.mounts);
});

test('an empty backup is valid (it means "no mounts")', () => {
  assert.deepEqual(parseBackup({ version: 1, mounts: [] }), { version: 1, mounts: [] });
});

test('the file must be an object with version 1', () => {
  for (const v of [null, [], 'x', 1, true]) refused(v, /not a JSON object/);
  refused({ mounts: [] }, /unsupported version undefined \(expected 1\)/);
  refused({ version: 2, mounts: [] }, /unsupported version 2/);
  refused({ version: '1', mounts: [] }, /unsupported version "1"/);
  refused({ version: 1 }, /"mounts" must be an array/);
  refused({ version: 1, mounts: {} }, /"mounts" must be an array/);
});

test('unknown top-level fields are refused by name', () => {
  refused({ version: 1, mounts: [], secrets: {}, extra: 1 }, /unknown fields secrets, extra/);
});

test('a bad mount is refused with its position and problem', () => {
  refused({ version: 1, mounts: [live, { ...live, path: '/_x' }] }, /mount #2: .*reserved/);
  refused({ version: 1, mounts: [live, { ...live, path: '/x', color: 'red' }] }, /mount #2: .*unknown field "color"/);
  refused({ version: 1, mounts: [{ path: '/x', username: 'source' }] }, /mount #1: .*password/);
  refused({ version: 1, mounts: [null] }, /mount #1: .*object/);
  refused(
    { version: 1, mounts: [live, { ...low, transcoding: { ...low.transcoding, codec: 'flac' } }] },
    /mount #2: .*codec/,
  );
  refused({ version: 1, mounts: [{ ...relay, relayUrl: 'https://example.com/' }] }, /mount #1: .*http:\/\//);
});

test('duplicate paths are refused', () => {
  refused({ version: 1, mounts: [live, backupMount, { ...live, password: 'other-password' }] }, /mount \/live.mp3 appears twice/);
});

test('broken references are refused: missing fallback, missing source, loops', () => {
  refused({ version: 1, mounts: [withFallback] }, /fallback mount \/backup.mp3 does not exist/);
  refused({ version: 1, mounts: [low] }, /transcoding source \/live.mp3 does not exist/);
  refused(
    {
      version: 1,
      mounts: [
        { ...live, fallback: '/backup.mp3' },
        { ...backupMount, fallback: '/show.mp3' },
        { ...withFallback, fallback: '/live.mp3' },
      ],
    },
    /would form a loop/,
  );
  refused(
    {
      version: 1,
      mounts: [
        { ...low, transcoding: { ...low.transcoding!, source: '/b.ogg' } },
        { ...low, path: '/b.ogg', transcoding: { ...low.transcoding!, source: '/live-low.ogg' } },
      ],
    },
    /would form a loop/,
  );
});
