import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TranscodingParams } from '../../src/coordination/mount.js';
import { transcoderScript, type TranscoderEndpoints } from '../../src/radiod/transcoder/script.js';

/**
 * `liquidsoap --check` of the script radiod generates for every codec and option, against a
 * given liquidsoap: this machine's, or the one inside a Debian root. --check type-checks the
 * script, resolves its encoders and evaluates its top level (about 2 s each).
 */

const endpoints: TranscoderEndpoints = {
  icecast: { host: '127.0.0.1', port: 1 },
  sourceMount: '/main.mp3',
  targetMount: '/low',
  username: 'lowuser',
  password: 'lowpass123',
};

export const SCRIPT_VARIANTS: TranscodingParams[] = [
  { source: '/main.mp3', codec: 'mp3', bitrate: 64, samplerate: 44100, channels: 2 },
  { source: '/main.mp3', codec: 'mp3', bitrate: 32, samplerate: 22050, channels: 1, quality: 5 },
  { source: '/main.mp3', codec: 'vorbis', bitrate: 64, samplerate: 44100, channels: 2 },
  { source: '/main.mp3', codec: 'vorbis', bitrate: 64, samplerate: 22050, channels: 1, quality: 0.3 },
  { source: '/main.mp3', codec: 'opus', bitrate: 48, samplerate: 48000, channels: 2, quality: 5 },
  { source: '/main.mp3', codec: 'aac', bitrate: 64, samplerate: 44100, channels: 1 },
];

export interface CheckResult {
  code: number | null;
  output: string;
}

/** Runs `liquidsoap --check <file>` with `env` added to the script's own environment. */
export type CheckRunner = (file: string, env: Record<string, string>) => Promise<CheckResult>;

/** The script's environment: --check evaluates the top level, which reads it. */
export const SCRIPT_ENV = transcoderScript(SCRIPT_VARIANTS[0]!, endpoints).env;

export interface CheckOptions {
  /** Maps a path in `dir` to the path the runner sees. */
  inside?: (path: string) => string;
  /**
   * Runs the script with one variable missing, which must exit 2. 2.1's --check evaluates the
   * top level (the default: `check`); 2.3's only type-checks, so there the script must run.
   */
  runWithoutVariable?: CheckRunner;
}

/**
 * Writes every variant (and two controls) into `dir`, checks them through `check` and asserts
 * the outcome. The first check runs alone: liquidsoap 2.3 compiles its standard library into
 * its cache on the first run (30 s), which the others then reuse (2 s); then two at a time.
 */
export async function assertScriptsCheck(check: CheckRunner, dir: string, opts: CheckOptions = {}): Promise<{ getenvAccepted: boolean }> {
  const inside = opts.inside ?? ((p: string) => p);
  const runWithoutVariable = opts.runWithoutVariable ?? check;
  const files: string[] = [];
  for (const [i, params] of SCRIPT_VARIANTS.entries()) {
    const file = join(dir, `v${i}-${params.codec}.liq`);
    await writeFile(file, transcoderScript(params, endpoints).text);
    files.push(inside(file));
  }
  // Controls that must fail, so a --check that accepts anything cannot pass this test: a type
  // error, and the getenv(name) form that 2.3 rejects (2.1 accepts it: the same as valid there).
  const text = transcoderScript(SCRIPT_VARIANTS[0]!, endpoints).text;
  const typeError = join(dir, 'type-error.liq');
  await writeFile(typeError, text.replace('public=false', 'public="no"'));
  const getenv = join(dir, 'getenv.liq');
  await writeFile(getenv, text.replace('list.assoc(default="", name, environment())', 'getenv(name)'));
  files.push(inside(typeError), inside(getenv));

  const results: CheckResult[] = new Array(files.length);
  results[0] = await check(files[0]!, SCRIPT_ENV);
  let next = 1;
  const worker = async () => {
    while (next < files.length) {
      const i = next++;
      results[i] = await check(files[i]!, SCRIPT_ENV);
    }
  };
  const [withoutPassword] = await Promise.all([
    runWithoutVariable(files[0]!, { ...SCRIPT_ENV, AUTORADIO_TRANSCODER_PASSWORD: '' }),
    worker(),
    worker(),
  ]);
  assert.equal(withoutPassword.code, 2, `a missing variable must stop the script:\n${withoutPassword.output}`);
  for (const [i, params] of SCRIPT_VARIANTS.entries()) {
    assert.equal(results[i]!.code, 0, `${JSON.stringify(params)}:\n${results[i]!.output}`);
  }
  const [typeErrorResult, getenvResult] = results.slice(-2) as [CheckResult, CheckResult];
  assert.notEqual(typeErrorResult.code, 0, 'a script with a type error must fail --check');
  assert.match(typeErrorResult.output, /Error \d+: /);
  return { getenvAccepted: getenvResult.code === 0 };
}
