import type { HostPort } from '../../coordination/host-port.js';
import { isIP } from 'node:net';
import { AutoradioError, ErrorCode } from '../../common/errors.js';
import {
  BITRATE_RANGE,
  CODECS,
  qualityProblem,
  SAMPLERATES,
  mountPathProblem,
  type Codec,
  type TranscodingParams,
} from '../../coordination/mount.js';

/**
 * Transcoding parameters + endpoints -> the liquidsoap script that re-encodes one mount.
 * Pure: no I/O. The script must run on every liquidsoap a supported Debian ships: 2.1.3
 * (Debian 12) and 2.3.x (Debian 13); `liquidsoap --check` of both is in the tests.
 *
 * Injection safety: the script text is built only from numbers that were range-checked here
 * and from fixed keywords. Every string (URL, host, mount, user, password) reaches liquidsoap
 * through environment variables that the script reads from environment(), so no value is ever
 * parsed as liquidsoap code. The environment also keeps the password out of `ps` output.
 */

/**
 * Codecs this build of liquidsoap can encode. All four were verified on Debian's 2.1.3:
 * aac goes through `%ffmpeg` (ffmpeg's native aac encoder); `%fdkaac` is not compiled in.
 */
export const SUPPORTED_CODECS: readonly Codec[] = ['mp3', 'vorbis', 'opus', 'aac'];

export function codecSupported(codec: string): codec is Codec {
  return (SUPPORTED_CODECS as readonly string[]).includes(codec);
}


export interface TranscoderEndpoints {
  /** The master's Icecast: the source mount is read from it and the result is sent to it. */
  icecast: HostPort;
  /** Mount the audio is read from. */
  sourceMount: string;
  /** Mount the re-encoded stream is sent to, with that mount's source credentials. */
  targetMount: string;
  username: string;
  password: string;
}

export interface TranscoderScript {
  /** The script file's contents. */
  text: string;
  /** Environment the script reads its strings from. */
  env: Record<string, string>;
}

/** Names of the environment variables the script reads. */
export const SCRIPT_ENV = {
  inputUrl: 'AUTORADIO_TRANSCODER_INPUT_URL',
  host: 'AUTORADIO_TRANSCODER_HOST',
  port: 'AUTORADIO_TRANSCODER_PORT',
  mount: 'AUTORADIO_TRANSCODER_MOUNT',
  user: 'AUTORADIO_TRANSCODER_USER',
  password: 'AUTORADIO_TRANSCODER_PASSWORD',
} as const;

/** Seconds of input liquidsoap buffers, and how often it retries a missing source mount. */
const INPUT_MAX_BUFFER_S = 5;
const INPUT_POLL_DELAY_S = 1;

const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const USERNAME_RE = /^[A-Za-z0-9._-]{1,64}$/;
const PASSWORD_RE = /^[A-Za-z0-9._~-]{8,128}$/;

/** Every reason the parameters cannot be turned into a script (empty when they can). */
export function scriptProblems(params: TranscodingParams, endpoints: TranscoderEndpoints): string[] {
  const problems: string[] = [];
  const codec: unknown = params.codec;
  if (typeof codec !== 'string' || !(CODECS as readonly string[]).includes(codec)) {
    problems.push(`unknown codec ${JSON.stringify(codec)} (one of ${CODECS.join(', ')})`);
    return problems;
  }
  if (!codecSupported(codec)) {
    problems.push(`codec ${codec} is not supported by this liquidsoap (supported: ${SUPPORTED_CODECS.join(', ')})`);
    return problems;
  }
  const [minRate, maxRate] = BITRATE_RANGE[codec];
  if (!Number.isInteger(params.bitrate) || params.bitrate < minRate || params.bitrate > maxRate) {
    problems.push(`bitrate ${String(params.bitrate)} must be an integer from ${minRate} to ${maxRate} kbit/s for ${codec}`);
  }
  if (!Number.isInteger(params.samplerate) || !SAMPLERATES[codec].includes(params.samplerate)) {
    problems.push(`samplerate ${String(params.samplerate)} is not supported for ${codec} (one of ${SAMPLERATES[codec].join(', ')})`);
  }
  if (params.channels !== 1 && params.channels !== 2) {
    problems.push(`channels ${String(params.channels)} must be 1 or 2`);
  }
  const quality = params.quality === undefined ? undefined : qualityProblem(codec, params.quality);
  if (quality) problems.push(quality);
  problems.push(...endpointProblems(endpoints));
  return problems;
}

function endpointProblems(e: TranscoderEndpoints): string[] {
  const problems: string[] = [];
  const host: unknown = e.icecast.host;
  if (typeof host !== 'string' || (isIP(host) === 0 && !HOSTNAME_RE.test(host))) {
    problems.push(`icecast host ${JSON.stringify(host)} is not an IP address or host name`);
  }
  if (!Number.isInteger(e.icecast.port) || e.icecast.port < 1 || e.icecast.port > 65535) {
    problems.push(`icecast port ${String(e.icecast.port)} must be an integer from 1 to 65535`);
  }
  const source = mountPathProblem(e.sourceMount);
  if (source) problems.push(`source: ${source}`);
  const target = mountPathProblem(e.targetMount);
  if (target) problems.push(`target: ${target}`);
  if (e.sourceMount === e.targetMount) problems.push(`mount ${e.targetMount} cannot transcode itself`);
  if (typeof e.username !== 'string' || !USERNAME_RE.test(e.username)) problems.push('source username is invalid');
  if (typeof e.password !== 'string' || !PASSWORD_RE.test(e.password)) problems.push('source password is invalid');
  return problems;
}

/** Builds the script; throws a coded error listing every problem when the input is invalid. */
export function transcoderScript(params: TranscodingParams, endpoints: TranscoderEndpoints): TranscoderScript {
  const problems = scriptProblems(params, endpoints);
  if (problems.length > 0) {
    throw new AutoradioError(
      ErrorCode.invalidMount,
      `cannot transcode ${String(endpoints.targetMount)}: ${problems.join('; ')}`,
    );
  }
  const { host, port } = endpoints.icecast;
  const urlHost = isIP(host) === 6 ? `[${host}]` : host;
  const env: Record<string, string> = {
    [SCRIPT_ENV.inputUrl]: `http://${urlHost}:${port}${endpoints.sourceMount}`,
    [SCRIPT_ENV.host]: host,
    [SCRIPT_ENV.port]: String(port),
    [SCRIPT_ENV.mount]: endpoints.targetMount,
    [SCRIPT_ENV.user]: endpoints.username,
    [SCRIPT_ENV.password]: endpoints.password,
  };
  const downmix = params.channels === 1 ? 's = mean(s)\n' : '';
  const text = `# autoradio transcoder (generated by radiod; do not edit).
# Strings come from the environment so that no value is ever parsed as code.
settings.init.allow_root.set(true)
settings.log.stdout.set(true)
settings.log.file.set(false)
settings.log.level.set(3)

# environment() and list.assoc mean the same on 2.1 and 2.3; getenv does not: Debian 13's
# 2.3 declares it getenv(default="", v), so getenv(name) lacks an argument there.
def required(name) =
  v = list.assoc(default="", name, environment())
  if v == "" then
    log.critical(label="autoradio", "missing environment variable " ^ name)
    exit(2)
  end
  v
end

input_url = required("${SCRIPT_ENV.inputUrl}")
icecast_host = required("${SCRIPT_ENV.host}")
icecast_port = int_of_string(required("${SCRIPT_ENV.port}"))
target_mount = required("${SCRIPT_ENV.mount}")
source_user = required("${SCRIPT_ENV.user}")
source_password = required("${SCRIPT_ENV.password}")

# mksafe: while the source mount is away (or the master changes) listeners hear silence
# instead of being dropped.
s = mksafe(input.http(input_url, poll_delay=${float(INPUT_POLL_DELAY_S)}, max_buffer=${float(INPUT_MAX_BUFFER_S)}))
${downmix}output.icecast(
  ${encoder(params)},
  host=icecast_host,
  port=icecast_port,
  user=source_user,
  password=source_password,
  mount=target_mount,
  public=false,
  fallible=true,
  s
)
`;
  return { text, env };
}

/** The encoder expression: one branch per codec, since liquidsoap formats are compile-time. */
export function encoder(p: TranscodingParams): string {
  const b = int(p.bitrate);
  const sr = int(p.samplerate);
  const ch = int(p.channels);
  switch (p.codec) {
    case 'mp3': {
      const q = p.quality === undefined ? '' : `, internal_quality=${int(p.quality)}`;
      return `%mp3(bitrate=${b}, samplerate=${sr}, ${p.channels === 1 ? 'mono' : 'stereo'}${q})`;
    }
    case 'vorbis':
      // A quality selects Vorbis' own VBR mode, which has no bitrate target; otherwise ABR.
      return p.quality === undefined
        ? `%vorbis.abr(bitrate=${b}, samplerate=${sr}, channels=${ch})`
        : `%vorbis(quality=${float(p.quality)}, samplerate=${sr}, channels=${ch})`;
    case 'opus': {
      const q = p.quality === undefined ? '' : `, complexity=${int(p.quality)}`;
      return `%opus(bitrate=${b}, samplerate=${sr}, channels=${ch}, application="audio"${q})`;
    }
    case 'aac':
      return `%ffmpeg(format="adts", %audio(codec="aac", b="${b}k", ar=${sr}, channels=${ch}))`;
  }
}

/** A liquidsoap int literal; refuses anything that is not a plain safe integer. */
function int(n: number): string {
  if (!Number.isSafeInteger(n)) throw new Error(`not an integer: ${String(n)}`);
  return String(n);
}

/** A liquidsoap float literal (it needs a dot; toFixed never uses exponent notation here). */
function float(n: number): string {
  if (!Number.isFinite(n) || Math.abs(n) >= 1e6) throw new Error(`not a usable float: ${String(n)}`);
  return n.toFixed(3).replace(/0+$/, '');
}
