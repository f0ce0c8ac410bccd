import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AutoradioError } from '../../src/common/errors.js';
import type { TranscodingParams } from '../../src/coordination/mount.js';
import {
  SCRIPT_ENV,
  encoder,
  scriptProblems,
  transcoderScript,
  type TranscoderEndpoints,
} from '../../src/radiod/transcoder/script.js';

const endpoints: TranscoderEndpoints = {
  icecast: { host: '127.0.0.1', port: 8123 },
  sourceMount: '/main.mp3',
  targetMount: '/low.mp3',
  username: 'lowuser',
  password: 'secret-pw.1',
};
const mp3: TranscodingParams = { source: '/main.mp3', codec: 'mp3', bitrate: 64, samplerate: 44100, channels: 2 };

test('mp3 script carries the numbers as literals and every string through the environment', () => {
  const s = transcoderScript(mp3, endpoints);
  assert.match(s.text, /%mp3\(bitrate=64, samplerate=44100, stereo\)/);
  assert.match(s.text, /settings\.init\.allow_root\.set\(true\)/);
  assert.equal(s.env[SCRIPT_ENV.inputUrl], 'http://127.0.0.1:8123/main.mp3');
  assert.equal(s.env[SCRIPT_ENV.host], '127.0.0.1');
  assert.equal(s.env[SCRIPT_ENV.port], '8123');
  assert.equal(s.env[SCRIPT_ENV.mount], '/low.mp3');
  assert.equal(s.env[SCRIPT_ENV.user], 'lowuser');
  assert.equal(s.env[SCRIPT_ENV.password], 'secret-pw.1');
  for (const value of ['secret-pw.1', 'lowuser', '/low.mp3', '/main.mp3', '127.0.0.1']) {
    assert.ok(!s.text.includes(value), `script text must not contain ${value}`);
  }
  assert.ok(!s.text.includes('mean('), 'stereo output is not downmixed');
});

test('the script is the same whatever the endpoints: only the environment changes', () => {
  const a = transcoderScript(mp3, endpoints);
  const b = transcoderScript(mp3, { ...endpoints, icecast: { host: 'master.example.org', port: 9000 }, password: 'other-pw-22' });
  assert.equal(a.text, b.text);
  assert.notDeepEqual(a.env, b.env);
});

test('IPv6 master addresses are bracketed in the input URL only', () => {
  const s = transcoderScript(mp3, { ...endpoints, icecast: { host: '::1', port: 8000 } });
  assert.equal(s.env[SCRIPT_ENV.inputUrl], 'http://[::1]:8000/main.mp3');
  assert.equal(s.env[SCRIPT_ENV.host], '::1');
});

test('one encoder per codec, with mono downmix and quality', () => {
  assert.equal(encoder({ ...mp3, channels: 1, samplerate: 22050, quality: 5 }), '%mp3(bitrate=64, samplerate=22050, mono, internal_quality=5)');
  assert.equal(encoder({ ...mp3, codec: 'vorbis' }), '%vorbis.abr(bitrate=64, samplerate=44100, channels=2)');
  assert.equal(encoder({ ...mp3, codec: 'vorbis', quality: 0.3 }), '%vorbis(quality=0.3, samplerate=44100, channels=2)');
  assert.equal(encoder({ ...mp3, codec: 'vorbis', quality: -0.1 }), '%vorbis(quality=-0.1, samplerate=44100, channels=2)');
  assert.equal(encoder({ ...mp3, codec: 'vorbis', quality: 1 }), '%vorbis(quality=1., samplerate=44100, channels=2)');
  assert.equal(
    encoder({ ...mp3, codec: 'opus', samplerate: 48000, bitrate: 48, quality: 10 }),
    '%opus(bitrate=48, samplerate=48000, channels=2, application="audio", complexity=10)',
  );
  assert.equal(
    encoder({ ...mp3, codec: 'aac', channels: 1 }),
    '%ffmpeg(format="adts", %audio(codec="aac", b="64k", ar=44100, channels=1))',
  );
  const mono = transcoderScript({ ...mp3, channels: 1 }, endpoints);
  assert.match(mono.text, /^s = mean\(s\)$/m);
});

test('out-of-range and non-integer numbers are refused before any text is produced', () => {
  const bad: [Partial<TranscodingParams>, RegExp][] = [
    [{ bitrate: 1000 }, /bitrate 1000/],
    [{ bitrate: 64.5 }, /bitrate 64.5/],
    [{ bitrate: Number.NaN }, /bitrate NaN/],
    [{ samplerate: 44101 }, /samplerate 44101/],
    [{ channels: 3 as 1 }, /channels 3/],
    [{ quality: 12 }, /quality 12/],
    [{ quality: 2.5 }, /quality 2.5 must be an integer/],
    [{ quality: Number.POSITIVE_INFINITY }, /quality Infinity/],
    [{ codec: 'flac' as 'mp3' }, /unknown codec "flac"/],
    [{ codec: 'aac', quality: 3 }, /takes no quality/],
    [{ codec: 'opus', samplerate: 44100 }, /samplerate 44100 is not supported for opus/],
  ];
  for (const [change, expected] of bad) {
    const params = { ...mp3, ...change } as TranscodingParams;
    assert.match(scriptProblems(params, endpoints).join('; '), expected, JSON.stringify(change));
    assert.throws(() => transcoderScript(params, endpoints), (err: unknown) => err instanceof AutoradioError && expected.test(err.message));
  }
});

test('endpoint strings that could smuggle code or break the protocol are refused', () => {
  const bad: [Partial<TranscoderEndpoints>, RegExp][] = [
    [{ password: 'pw")\nsystem("rm -rf /")#' }, /password is invalid/],
    [{ username: 'a b' }, /username is invalid/],
    [{ targetMount: '/x"y' }, /target: /],
    [{ sourceMount: '/../etc' }, /source: /],
    [{ sourceMount: '/low.mp3' }, /cannot transcode itself/],
    [{ icecast: { host: 'evil host', port: 8000 } }, /icecast host/],
    [{ icecast: { host: '127.0.0.1', port: 70000 } }, /icecast port 70000/],
  ];
  for (const [change, expected] of bad) {
    const e = { ...endpoints, ...change };
    assert.match(scriptProblems(mp3, e).join('; '), expected, JSON.stringify(change));
    assert.throws(() => transcoderScript(mp3, e), AutoradioError);
  }
  // The refused password never appears in the message users see.
  try {
    transcoderScript(mp3, { ...endpoints, password: 'pw")\nbad' });
    assert.fail('expected a refusal');
  } catch (err) {
    assert.ok(!(err as Error).message.includes('bad'));
  }
});
