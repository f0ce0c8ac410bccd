import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AutoradioError, ErrorCode } from '../../src/common/errors.js';
import { scriptProblems } from '../../src/radiod/transcoder/script.js';
import {
  BITRATE_RANGE,
  CODECS,
  QUALITY_RANGE,
  SAMPLERATES,
  assertMountPath,
  isValidMountPath,
  mountPathProblem,
  mountProblems,
  mountReferenceProblems,
  mountsReferring,
  parseStoredMount,
  publicMount,
  relayUrlProblem,
  type Codec,
  type Mount,
  type TranscodingParams,
} from '../../src/coordination/mount.js';

const PASSWORD = 'Secret-password_123';

function mount(path: string, extra: Partial<Mount> = {}): Mount {
  return { path, username: 'source', password: PASSWORD, ...extra };
}

function transcoded(path: string, t: Partial<TranscodingParams> = {}, extra: Partial<Mount> = {}): Mount {
  return mount(path, {
    transcoding: { source: '/live.mp3', codec: 'mp3', bitrate: 64, samplerate: 44100, channels: 2, ...t },
    ...extra,
  });
}

function byPath(...list: Mount[]): Map<string, Mount> {
  return new Map(list.map((m) => [m.path, m]));
}

test('mount paths the SPEC allows are accepted', () => {
  const good = [
    '/a',
    '/radio.mp3',
    '/path/to/mount.mp3',
    '/A-Z_a.z-0_9',
    '/.hidden.ogg',
    '/a_',
    '/x/_y.mp3', // only a leading "/_" is reserved
    '/a.b.c/d-e_f.opus',
    `/${'a'.repeat(200)}`,
    `/${'a/'.repeat(99)}aa`, // 200 characters with slashes
  ];
  for (const p of good) {
    assert.equal(mountPathProblem(p), undefined, `${p} should be valid`);
    assert.equal(isValidMountPath(p), true);
    assert.doesNotThrow(() => assertMountPath(p));
  }
});

test('every kind of bad mount path is refused with a message naming the rule', () => {
  const cases: [unknown, RegExp][] = [
    ['', /must start with "\/"/],
    ['radio.mp3', /must start with "\/"/],
    ['/', /1-200 characters/],
    [`/${'a'.repeat(201)}`, /1-200 characters/],
    ['/a b.mp3', /characters of/],
    [' /a.mp3', /must start with/],
    ['/a.mp3 ', /characters of/],
    ['/a\u0000b.mp3', /characters of/],
    ['/a.mp3\n', /characters of/],
    ['/radió.mp3', /characters of/],
    ['/радио.mp3', /characters of/],
    ['/a%2Fb.mp3', /characters of/],
    ['/a%2fb.mp3', /characters of/],
    ['/a?b=1', /characters of/],
    ['/a#b', /characters of/],
    ['/a\\b', /characters of/],
    ['/a:b', /characters of/],
    ['/a+b', /characters of/],
    ['//a.mp3', /"\/\/"/],
    ['/a//b.mp3', /"\/\/"/],
    ['/a/', /end with "\/"/],
    ['/a/b/', /end with "\/"/],
    ['/..', /"\.\."/],
    ['/a/../b', /"\.\."/],
    ['/a/..', /"\.\."/],
    ['/a..b.mp3', /"\.\."/],
    ['/a.mp3..', /"\.\."/],
    ['/_stream/a.mp3', /reserved/],
    ['/_', /reserved/],
    ['/_a', /reserved/],
    [42, /must be a string/],
    [undefined, /must be a string/],
    [null, /must be a string/],
  ];
  for (const [p, re] of cases) {
    const problem = mountPathProblem(p);
    assert.ok(problem, `${JSON.stringify(p)} should be refused`);
    assert.match(problem, re, `${JSON.stringify(p)}: ${problem}`);
    assert.equal(isValidMountPath(p), false);
    assert.throws(
      () => assertMountPath(p),
      (err: unknown) => err instanceof AutoradioError && err.code === ErrorCode.invalidMountPath,
    );
  }
});

test('path messages never echo raw control characters and stay short', () => {
  const problem = mountPathProblem(`/a\u0000\u001b[31m${'x'.repeat(500)}`)!;
  assert.doesNotMatch(problem, /[\u0000-\u001f]/);
  assert.match(problem, /\\x00/);
  assert.ok(problem.length < 200, problem);
  assert.doesNotMatch(mountPathProblem('/ünï')!, /[^\x20-\x7e]/);
});

test('a minimal mount is valid; the shape is checked strictly', () => {
  assert.deepEqual(mountProblems(mount('/a.mp3')), []);
  const bad: [unknown, RegExp][] = [
    [null, /object/],
    ['{}', /object/],
    [[], /object/],
    [{ path: '/a.mp3', username: 'source' }, /password/],
    [{ path: '/a.mp3', password: PASSWORD }, /username/],
    [{ username: 'source', password: PASSWORD }, /path/],
    [{ ...mount('/a.mp3'), extra: 1 }, /unknown field "extra"/],
    [mount('/a.mp3', { password: 'short' }), /password/],
    [mount('/a.mp3', { password: 'has space here' }), /password/],
    [mount('/a.mp3', { password: 'a<b>&"quoted"' }), /password/],
    [mount('/a.mp3', { username: '' }), /username/],
    [mount('/a.mp3', { username: 'us<er' }), /username/],
    [mount('bad'), /must start with/],
    [mount('/_x'), /reserved/],
    [mount('/a.mp3', { fallback: 'nope' }), /fallback: .*must start with/],
    [mount('/a.mp3', { fallback: '/a.mp3' }), /its own fallback/],
    [mount('/a.mp3', { relayUrl: '' }), /relayUrl/],
    [{ ...mount('/a.mp3'), fallback: 3 }, /fallback/],
  ];
  for (const [value, re] of bad) {
    const problems = mountProblems(value);
    assert.ok(problems.length > 0, `${JSON.stringify(value)} should be refused`);
    assert.match(problems.join('; '), re);
  }
});

test('transcoding parameters: codecs, bitrate, samplerate, channels and quality ranges', () => {
  for (const codec of CODECS) {
    const [lo, hi] = BITRATE_RANGE[codec];
    const rate = SAMPLERATES[codec][0]!;
    const ok = (t: Partial<TranscodingParams>) => mountProblems(transcoded('/t', { codec, samplerate: rate, ...t }));
    assert.deepEqual(ok({ bitrate: lo }), [], `${codec} ${lo}`);
    assert.deepEqual(ok({ bitrate: hi }), [], `${codec} ${hi}`);
    assert.match(ok({ bitrate: lo - 1 }).join(), new RegExp(`bitrate ${lo - 1} is out of range for ${codec}`));
    assert.match(ok({ bitrate: hi + 1 }).join(), new RegExp(`bitrate ${hi + 1} is out of range for ${codec}`));
    for (const sr of SAMPLERATES[codec]) assert.deepEqual(ok({ bitrate: lo, samplerate: sr }), []);
    assert.match(ok({ bitrate: lo, samplerate: 44099 }).join(), /samplerate 44099 is not supported/);
    assert.deepEqual(ok({ bitrate: lo, channels: 1 }), []);
    const q = QUALITY_RANGE[codec];
    if (q) {
      assert.deepEqual(ok({ bitrate: lo, quality: q[0] }), []);
      assert.deepEqual(ok({ bitrate: lo, quality: q[1] }), []);
      assert.match(ok({ bitrate: lo, quality: q[0] - 0.5 }).join(), /quality .* out of range/);
      assert.match(ok({ bitrate: lo, quality: q[1] + 0.5 }).join(), /quality .* out of range/);
      // What the transcoder takes, and nothing else: liquidsoap's %mp3 internal_quality and
      // %opus complexity are integers, %vorbis quality a float.
      const fractional = ok({ bitrate: lo, quality: 0.5 });
      if (codec === 'vorbis') assert.deepEqual(fractional, []);
      else assert.deepEqual(fractional, [`quality 0.5 must be an integer for ${codec}`]);
      for (const quality of [q[0], q[1], 0.5, 2.5]) {
        const params = { source: '/live.mp3', codec, bitrate: lo, samplerate: rate, channels: 2 as const, quality };
        const endpoints = { icecast: { host: '127.0.0.1', port: 8000 }, username: 'source', password: 'secretpass', sourceMount: '/live.mp3', targetMount: '/t' };
        assert.equal(mountProblems(transcoded('/t', params)).length === 0, scriptProblems(params, endpoints).length === 0, `${codec} quality ${quality}`);
      }
    } else {
      assert.match(ok({ bitrate: lo, quality: 1 }).join(), /takes no quality setting/);
    }
  }
  assert.match(mountProblems(transcoded('/t', { samplerate: 44100, codec: 'opus' })).join(), /not supported for opus/);
  const shape: [Partial<TranscodingParams> | Record<string, unknown>, RegExp][] = [
    [{ codec: 'flac' as Codec }, /codec: must be one of mp3, vorbis, opus, aac/],
    [{ bitrate: 64.5 }, /bitrate must be integer/],
    [{ bitrate: '64' as unknown as number }, /bitrate must be integer/],
    [{ samplerate: 44100.5 }, /samplerate must be integer/],
    [{ channels: 3 as 2 }, /channels: must be one of 1, 2/],
    [{ channels: 0 as 1 }, /channels: must be one of 1, 2/],
    [{ quality: 'high' as unknown as number }, /quality must be number/],
    [{ extra: true }, /unknown field "extra"/],
  ];
  for (const [t, re] of shape) assert.match(mountProblems(transcoded('/t', t)).join(), re);
  const missing = mount('/t', { transcoding: { source: '/live.mp3', codec: 'mp3' } as TranscodingParams });
  assert.match(mountProblems(missing).join(), /bitrate/);
  assert.match(mountProblems(transcoded('/t', { source: 'live' })).join(), /transcoding source: .*must start with/);
  assert.match(mountProblems(transcoded('/t', { source: '/t' })).join(), /cannot transcode itself/);
  assert.match(
    mountProblems(transcoded('/t', {}, { relayUrl: 'http://example.com/x' })).join(),
    /cannot be both a relay and a transcoding mount/,
  );
});

test('relay URLs: plain http with a host, no characters that would break the Icecast XML', () => {
  for (const url of [
    'http://example.com/stream',
    'http://example.com:8080/a/b.mp3?x=1',
    'http://user:pass@example.com/live',
    'http://192.0.2.1/x',
    'http://[2001:db8::1]:8000/x',
    'http://example.com/%3Cescaped%3E',
  ]) {
    assert.equal(relayUrlProblem(url), undefined, url);
    assert.deepEqual(mountProblems(mount('/r', { relayUrl: url })), [], url);
  }
  const bad: [string, RegExp][] = [
    ['https://example.com/stream', /must use http:\/\//],
    ['ftp://example.com/stream', /must use http:\/\//],
    ['icecast://example.com/stream', /must use http:\/\//],
    ['file:///etc/passwd', /must use http:\/\//],
    ['example.com/stream', /not a valid URL/],
    ['http://', /not a valid URL/],
    ['', /not a valid URL/],
    ['http://example.com/a<b', /percent-encoded/],
    ['http://example.com/a>b', /percent-encoded/],
    ['http://example.com/a"b', /percent-encoded/],
    ["http://example.com/a'b", /percent-encoded/],
    ['http://example.com/a&b=1', /percent-encoded/],
    ['http://example.com/a b', /percent-encoded/],
    ['http://example.com/a\tb', /percent-encoded/],
    ['http://example.com/a\nb', /percent-encoded/],
  ];
  for (const [url, re] of bad) {
    const problem = relayUrlProblem(url);
    assert.ok(problem, `${JSON.stringify(url)} should be refused`);
    assert.match(problem, re, url);
    // The empty string is already refused by the shape check, with its own wording.
    assert.match(mountProblems(mount('/r', { relayUrl: url })).join(), url === '' ? /relayUrl/ : re);
  }
  assert.match(mountProblems(mount('/r', { relayUrl: `http://example.com/${'a'.repeat(2048)}` })).join(), /relayUrl/);
});

test('mountReferenceProblems: missing transcoding source and fallback', () => {
  const live = mount('/live.mp3');
  assert.deepEqual(mountReferenceProblems(transcoded('/low.mp3'), byPath(live)), []);
  assert.deepEqual(mountReferenceProblems(transcoded('/low.mp3'), byPath()), ['transcoding source /live.mp3 does not exist']);
  assert.deepEqual(mountReferenceProblems(mount('/a', { fallback: '/live.mp3' }), byPath(live)), []);
  assert.deepEqual(mountReferenceProblems(mount('/a', { fallback: '/gone' }), byPath(live)), [
    'fallback mount /gone does not exist',
  ]);
  const both = mountReferenceProblems(transcoded('/low.mp3', { source: '/x' }, { fallback: '/y' }), byPath(live));
  assert.equal(both.length, 2);
  // A transcoding mount may be the source of another one (a chain), and a fallback chain is fine.
  const low = transcoded('/low.mp3');
  assert.deepEqual(mountReferenceProblems(transcoded('/lower.mp3', { source: '/low.mp3' }), byPath(live, low)), []);
  const b = mount('/b', { fallback: '/c' });
  const c = mount('/c');
  assert.deepEqual(mountReferenceProblems(mount('/a', { fallback: '/b' }), byPath(b, c)), []);
});

test('mountReferenceProblems: fallback loops of any length are refused', () => {
  // a -> b, and b is now edited to fall back to a
  const a = mount('/a', { fallback: '/b' });
  assert.match(
    mountReferenceProblems(mount('/b', { fallback: '/a' }), byPath(a, mount('/b'))).join(),
    /fallback \/a of \/b would form a loop/,
  );
  // a -> b -> c, c -> a
  const all = byPath(mount('/a', { fallback: '/b' }), mount('/b', { fallback: '/c' }), mount('/c'));
  assert.match(mountReferenceProblems(mount('/c', { fallback: '/a' }), all).join(), /would form a loop/);
  // An existing loop elsewhere does not hang the check nor blame an unrelated mount.
  const elsewhere = byPath(mount('/x', { fallback: '/y' }), mount('/y', { fallback: '/x' }));
  assert.deepEqual(mountReferenceProblems(mount('/a', { fallback: '/x' }), elsewhere), []);
});

test('mountReferenceProblems: transcoding chains that come back are refused', () => {
  const live = mount('/live.mp3');
  // low transcodes live; editing live into a transcoding of low closes the loop.
  const low = transcoded('/low.mp3', { source: '/live.mp3' });
  const loop = transcoded('/live.mp3', { source: '/low.mp3' });
  assert.match(mountReferenceProblems(loop, byPath(live, low)).join(), /transcoding \/live.mp3 from \/low.mp3 would form a loop/);
  // Three hops.
  const all = byPath(
    transcoded('/a', { source: '/b' }),
    transcoded('/b', { source: '/c' }),
    mount('/c'),
  );
  assert.match(mountReferenceProblems(transcoded('/c', { source: '/a' }), all).join(), /would form a loop/);
  // Fallback and transcoding relations are separate: a fallback to the source is no loop.
  assert.deepEqual(mountReferenceProblems(transcoded('/low.mp3', {}, { fallback: '/live.mp3' }), byPath(live)), []);
});

test('mountsReferring lists the mounts that use a path as fallback or transcoding source', () => {
  const all = [
    mount('/live.mp3', { fallback: '/live.mp3' }), // itself: never listed
    transcoded('/low.mp3'),
    mount('/b', { fallback: '/live.mp3' }),
    mount('/c', { fallback: '/b' }),
    mount('/live.mp3.ogg'),
  ];
  assert.deepEqual(
    mountsReferring('/live.mp3', all).map((m) => m.path),
    ['/low.mp3', '/b'],
  );
  assert.deepEqual(
    mountsReferring('/b', all).map((m) => m.path),
    ['/c'],
  );
  assert.deepEqual(mountsReferring('/c', all), []);
  assert.deepEqual(mountsReferring('/live', all), []);
});

test('parseStoredMount accepts a valid value and refuses malformed ones with a coded error', () => {
  const m = transcoded('/low.mp3', { quality: 2 }, { fallback: '/live.mp3' });
  assert.deepEqual(parseStoredMount(JSON.stringify(m)), m);
  const bad: [string, RegExp][] = [
    ['', /not valid JSON/],
    ['{', /not valid JSON/],
    ['{"path": "/a",}', /not valid JSON/],
    ['undefined', /not valid JSON/],
    ['null', /object/],
    ['"a string"', /object/],
    ['[]', /object/],
    ['42', /object/],
    ['{}', /required property/],
    [JSON.stringify(mount('no-slash')), /must start with/],
    [JSON.stringify({ ...m, transcoding: { ...m.transcoding, codec: 'wav' } }), /codec/],
  ];
  for (const [json, re] of bad) {
    assert.throws(
      () => parseStoredMount(json),
      (err: unknown) => err instanceof AutoradioError && err.code === ErrorCode.invalidMount && re.test(err.message),
      json,
    );
  }
});

test('publicMount drops the source password and keeps everything else', () => {
  const m = transcoded('/low.mp3', { quality: 3 }, { fallback: '/live.mp3' });
  const pub = publicMount(m);
  assert.equal('password' in pub, false);
  assert.equal(JSON.stringify(pub).includes(PASSWORD), false);
  assert.deepEqual(pub, { path: '/low.mp3', username: 'source', fallback: '/live.mp3', transcoding: m.transcoding });
  assert.equal(m.password, PASSWORD, 'the original is not modified');
});

test('publicMount hides credentials embedded in a relay URL', () => {
  const pub = publicMount(mount('/r', { relayUrl: 'http://user:upstream-secret@example.com:8000/live' }));
  assert.equal(JSON.stringify(pub).includes('upstream-secret'), false);
  assert.equal(pub.relayUrl, 'http://example.com:8000/live');
  assert.equal(publicMount(mount('/r', { relayUrl: 'http://example.com/x' })).relayUrl, 'http://example.com/x');
});
