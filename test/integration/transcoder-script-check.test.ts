import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TranscodingParams } from '../../src/coordination/mount.js';
import { transcoderScript, type TranscoderEndpoints } from '../../src/radiod/transcoder/script.js';

/** `liquidsoap --check` type-checks a script and resolves its encoders (about 2 s each). */
const endpoints: TranscoderEndpoints = {
  icecast: { host: '127.0.0.1', port: 1 },
  sourceMount: '/main.mp3',
  targetMount: '/low',
  username: 'lowuser',
  password: 'lowpass123',
};

const variants: TranscodingParams[] = [
  { source: '/main.mp3', codec: 'mp3', bitrate: 64, samplerate: 44100, channels: 2 },
  { source: '/main.mp3', codec: 'mp3', bitrate: 32, samplerate: 22050, channels: 1, quality: 5 },
  { source: '/main.mp3', codec: 'vorbis', bitrate: 64, samplerate: 44100, channels: 2 },
  { source: '/main.mp3', codec: 'vorbis', bitrate: 64, samplerate: 22050, channels: 1, quality: 0.3 },
  { source: '/main.mp3', codec: 'opus', bitrate: 48, samplerate: 48000, channels: 2, quality: 5 },
  { source: '/main.mp3', codec: 'aac', bitrate: 64, samplerate: 44100, channels: 1 },
];

let dir: string | undefined;
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** --check also evaluates the script's top level, so it needs the environment the script reads. */
const fullEnv = { ...process.env, ...transcoderScript(variants[0]!, endpoints).env };

function check(path: string, env: NodeJS.ProcessEnv = fullEnv): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('liquidsoap', ['--check', path], { timeout: 60_000, env }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

/** Two at a time: CI has two cores. */
async function checkAll(paths: string[]): Promise<{ code: number; output: string }[]> {
  const results: { code: number; output: string }[] = new Array(paths.length);
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const i = next++;
      results[i] = await check(paths[i]!);
    }
  };
  await Promise.all([worker(), worker()]);
  return results;
}

test('liquidsoap --check accepts the generated script for every codec', async () => {
  dir = await mkdtemp(join(tmpdir(), 'autoradio-liq-check-'));
  const paths: string[] = [];
  for (const [i, params] of variants.entries()) {
    const path = join(dir, `v${i}-${params.codec}.liq`);
    await writeFile(path, transcoderScript(params, endpoints).text);
    paths.push(path);
  }
  // A control that must fail, so a --check that accepts anything cannot pass this test.
  const broken = join(dir, 'broken.liq');
  await writeFile(broken, transcoderScript(variants[0]!, endpoints).text.replace('%mp3(', '%fdkaac('));
  paths.push(broken);

  const [results, withoutPassword] = await Promise.all([
    checkAll(paths),
    check(paths[0]!, { ...fullEnv, AUTORADIO_TRANSCODER_PASSWORD: '' }),
  ]);
  assert.equal(withoutPassword.code, 2, `a missing variable must stop the script:\n${withoutPassword.output}`);
  for (const [i, params] of variants.entries()) {
    assert.equal(results[i]!.code, 0, `${JSON.stringify(params)}:\n${results[i]!.output}`);
  }
  assert.notEqual(results.at(-1)!.code, 0, 'a script with an encoder this build lacks must fail --check');
  assert.match(results.at(-1)!.output, /Unsupported format/);
});
