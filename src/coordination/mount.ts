import { Ajv, type ErrorObject } from 'ajv';
import { AutoradioError, ErrorCode, jsonErrorMessage } from '../common/errors.js';
import { mountPathFromKey } from './keys.js';

/**
 * A mount (stream) as stored in etcd. Pure model and validation: no I/O here.
 */
export const CODECS = ['mp3', 'vorbis', 'opus', 'aac'] as const;
export type Codec = (typeof CODECS)[number];

export interface TranscodingParams {
  /** Mount whose audio is re-encoded. */
  source: string;
  codec: Codec;
  /** kbit/s */
  bitrate: number;
  samplerate: number;
  channels: 1 | 2;
  /** Codec-specific quality; see QUALITY_RANGE. */
  quality?: number;
}

export interface Mount {
  path: string;
  username: string;
  password: string;
  /** When set, the master's Icecast pulls this mount from an outside URL instead of a source. */
  relayUrl?: string;
  /** Listeners move here when the mount's source drops, and back when it returns. */
  fallback?: string;
  transcoding?: TranscodingParams;
}

export const MAX_MOUNT_PATH_CHARS = 200;
const MOUNT_PATH_RE = /^\/[A-Za-z0-9._/-]{1,200}$/;

/** Returns why `path` is not a valid mount path, or undefined when it is. */
export function mountPathProblem(path: unknown): string | undefined {
  if (typeof path !== 'string') return 'a mount path must be a string';
  if (!path.startsWith('/')) return `mount path "${printable(path)}" must start with "/"`;
  if (!MOUNT_PATH_RE.test(path)) {
    return `mount path "${printable(path)}" must be "/" followed by 1-${MAX_MOUNT_PATH_CHARS} characters of A-Z a-z 0-9 . _ / -`;
  }
  if (path.includes('//')) return `mount path "${path}" must not contain "//"`;
  if (path.endsWith('/')) return `mount path "${path}" must not end with "/"`;
  if (path.split('/').some((seg) => seg === '..' || seg === '.')) {
    return `mount path "${path}" must not contain "." or ".." segments`;
  }
  if (path.includes('..')) return `mount path "${path}" must not contain ".."`;
  if (path.startsWith('/_')) return `mount path "${path}" must not start with "/_" (reserved)`;
  return undefined;
}

export function isValidMountPath(path: unknown): path is string {
  return mountPathProblem(path) === undefined;
}

export function assertMountPath(path: unknown): asserts path is string {
  const problem = mountPathProblem(path);
  if (problem) throw new AutoradioError(ErrorCode.invalidMountPath, problem);
}

function printable(s: string): string {
  const shown = s.length > 60 ? `${s.slice(0, 60)}...` : s;
  return shown.replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Bitrate limits (kbit/s) per codec, within what the encoders accept. */
export const BITRATE_RANGE: Record<Codec, [number, number]> = {
  mp3: [8, 320],
  vorbis: [32, 500],
  opus: [6, 510],
  aac: [8, 320],
};

export const SAMPLERATES: Record<Codec, readonly number[]> = {
  mp3: [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000],
  vorbis: [8000, 11025, 16000, 22050, 32000, 44100, 48000],
  opus: [48000],
  aac: [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000],
};

/** mp3: LAME quality 0 (best) to 9; vorbis: -0.1 to 1; opus: encoder complexity 0 to 10. */
export const QUALITY_RANGE: Record<Codec, [number, number] | undefined> = {
  mp3: [0, 9],
  vorbis: [-0.1, 1],
  opus: [0, 10],
  aac: undefined,
};

export const DEFAULT_SAMPLERATE: Record<Codec, number> = {
  mp3: 44100,
  vorbis: 44100,
  opus: 48000,
  aac: 44100,
};

/** Source usernames are fixed by Icecast's protocol convention; the password is the secret. */
export const SOURCE_USERNAME = 'source';

const mountSchema = {
  $id: 'autoradio/mount',
  type: 'object',
  additionalProperties: false,
  required: ['path', 'username', 'password'],
  properties: {
    path: { type: 'string', minLength: 2, maxLength: MAX_MOUNT_PATH_CHARS + 1 },
    username: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' },
    password: { type: 'string', pattern: '^[A-Za-z0-9._~-]{8,128}$' },
    relayUrl: { type: 'string', minLength: 1, maxLength: 2048 },
    fallback: { type: 'string' },
    transcoding: {
      type: 'object',
      additionalProperties: false,
      required: ['source', 'codec', 'bitrate', 'samplerate', 'channels'],
      properties: {
        source: { type: 'string' },
        codec: { enum: [...CODECS] },
        bitrate: { type: 'integer' },
        samplerate: { type: 'integer' },
        channels: { enum: [1, 2] },
        quality: { type: 'number' },
      },
    },
  },
} as const;

const ajv = new Ajv({ allErrors: true, strict: true });
const validateMountShape = ajv.compile<Mount>(mountSchema);

export function formatAjvErrors(errors: ErrorObject[] | null | undefined): string {
  if (!errors || errors.length === 0) return 'invalid value';
  return errors
    .map((e) => {
      const where = e.instancePath || '(root)';
      if (e.keyword === 'additionalProperties') {
        return `${where}: unknown field "${String(e.params['additionalProperty'])}"`;
      }
      if (e.keyword === 'enum') {
        return `${where}: must be one of ${(e.params['allowedValues'] as unknown[]).join(', ')}`;
      }
      return `${where} ${e.message ?? 'is invalid'}`;
    })
    .join('; ');
}

/**
 * Checks one mount on its own: shape, path rules, URL form, codec ranges. Returns the list
 * of problems (empty when valid).
 */
export function mountProblems(value: unknown): string[] {
  if (!validateMountShape(value)) return [formatAjvErrors(validateMountShape.errors)];
  const m = value;
  const problems: string[] = [];
  const pathProblem = mountPathProblem(m.path);
  if (pathProblem) problems.push(pathProblem);
  if (m.fallback !== undefined) {
    const p = mountPathProblem(m.fallback);
    if (p) problems.push(`fallback: ${p}`);
    else if (m.fallback === m.path) problems.push(`mount ${m.path} cannot be its own fallback`);
  }
  if (m.relayUrl !== undefined) {
    const p = relayUrlProblem(m.relayUrl);
    if (p) problems.push(p);
  }
  if (m.relayUrl !== undefined && m.transcoding !== undefined) {
    problems.push(`mount ${m.path} cannot be both a relay and a transcoding mount`);
  }
  if (m.transcoding) problems.push(...transcodingProblems(m.path, m.transcoding));
  return problems;
}

export function relayUrlProblem(url: string): string | undefined {
  // The message can end up in a daemon's log (a bad value read from etcd): never echo the
  // upstream's user:password.
  const shown = printable(url.replace(/^([^:/?#]*:\/\/)?[^/?#]*@/, (_m, scheme?: string) => `${scheme ?? ''}***@`));
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `relay URL "${shown}" is not a valid URL`;
  }
  if (parsed.protocol !== 'http:') return `relay URL "${shown}" must use http:// (Icecast relays speak plain HTTP)`;
  if (!parsed.hostname) return `relay URL "${shown}" has no host`;
  if (/[\s<>"'&]/.test(url)) return `relay URL "${shown}" contains characters that must be percent-encoded`;
  return undefined;
}

export function transcodingProblems(path: string, t: TranscodingParams): string[] {
  const problems: string[] = [];
  const sourceProblem = mountPathProblem(t.source);
  if (sourceProblem) problems.push(`transcoding source: ${sourceProblem}`);
  if (t.source === path) problems.push(`mount ${path} cannot transcode itself`);
  const [minRate, maxRate] = BITRATE_RANGE[t.codec];
  if (t.bitrate < minRate || t.bitrate > maxRate) {
    problems.push(`bitrate ${t.bitrate} is out of range for ${t.codec} (${minRate}-${maxRate} kbit/s)`);
  }
  if (!SAMPLERATES[t.codec].includes(t.samplerate)) {
    problems.push(`samplerate ${t.samplerate} is not supported for ${t.codec} (one of ${SAMPLERATES[t.codec].join(', ')})`);
  }
  const quality = t.quality === undefined ? undefined : qualityProblem(t.codec, t.quality);
  if (quality) problems.push(quality);
  return problems;
}

/**
 * Why the transcoder cannot take `quality` for `codec`, if it cannot: the mount checks and the
 * transcoder share this rule, so a mount radioctl accepts always gets a transcoder. liquidsoap
 * (2.1.3) takes %mp3's internal_quality and %opus' complexity as integers only (2.5: "invalid
 * parameter value") and %vorbis' quality as a float (-0.2 to 1; the range here is narrower).
 */
export function qualityProblem(codec: Codec, quality: unknown): string | undefined {
  const range = QUALITY_RANGE[codec];
  if (!range) return `codec ${codec} takes no quality setting`;
  if (typeof quality !== 'number' || !Number.isFinite(quality) || quality < range[0] || quality > range[1]) {
    return `quality ${String(quality)} is out of range for ${codec} (${range[0]} to ${range[1]})`;
  }
  if (codec !== 'vorbis' && !Number.isInteger(quality)) return `quality ${quality} must be an integer for ${codec}`;
  return undefined;
}

/**
 * Checks a mount against the others it refers to: the transcoding source and the fallback
 * must exist, and neither may form a loop (a transcoder fed by its own output, or listeners
 * bounced between fallbacks forever).
 */
export function mountReferenceProblems(mount: Mount, all: ReadonlyMap<string, Mount>): string[] {
  const problems: string[] = [];
  const others = new Map(all);
  others.set(mount.path, mount);
  if (mount.transcoding) {
    const source = others.get(mount.transcoding.source);
    if (!source) problems.push(`transcoding source ${mount.transcoding.source} does not exist`);
    else if (followsTo(mount.path, (m) => m.transcoding?.source, others)) {
      problems.push(`transcoding ${mount.path} from ${mount.transcoding.source} would form a loop`);
    }
  }
  if (mount.fallback !== undefined) {
    if (!others.has(mount.fallback)) problems.push(`fallback mount ${mount.fallback} does not exist`);
    else if (followsTo(mount.path, (m) => m.fallback, others)) {
      problems.push(`fallback ${mount.fallback} of ${mount.path} would form a loop`);
    }
  }
  return problems;
}

/** Whether following `next` from `start` comes back to `start`. */
function followsTo(start: string, next: (m: Mount) => string | undefined, all: ReadonlyMap<string, Mount>): boolean {
  const seen = new Set<string>();
  let current = all.get(start);
  while (current) {
    const n = next(current);
    if (n === undefined) return false;
    if (n === start) return true;
    if (seen.has(n)) return false;
    seen.add(n);
    current = all.get(n);
  }
  return false;
}

/** Mounts that refer to `path` (as transcoding source or fallback): deleting it would break them. */
export function mountsReferring(path: string, all: Iterable<Mount>): Mount[] {
  const result: Mount[] = [];
  for (const m of all) {
    if (m.path === path) continue;
    if (m.fallback === path || m.transcoding?.source === path) result.push(m);
  }
  return result;
}

/** Parses a stored etcd value; throws a coded error naming the key's problem. */
export function parseStoredMount(json: string): Mount {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new AutoradioError(ErrorCode.invalidMount, `stored mount is not valid JSON: ${jsonErrorMessage(err)}`);
  }
  const problems = mountProblems(value);
  if (problems.length > 0) throw new AutoradioError(ErrorCode.invalidMount, problems.join('; '));
  return value as Mount;
}

/** A stored mount read from its etcd key: valid, and at the key its path names. */
export function parseStoredMountAt(key: string, json: string): Mount {
  const mount = parseStoredMount(json);
  if (mount.path !== mountPathFromKey(key)) {
    throw new AutoradioError(ErrorCode.invalidMount, `its path ${mount.path} does not match the key`);
  }
  return mount;
}

/** The mount without its secret, for status pages, JSON and logs. */
export type PublicMount = Omit<Mount, 'password'>;

export function publicMount(m: Mount): PublicMount {
  const { password: _password, ...rest } = m;
  // user:password in a relay URL is the upstream's source secret.
  if (rest.relayUrl !== undefined) rest.relayUrl = relayUrlWithoutCredentials(rest.relayUrl);
  return rest;
}

function relayUrlWithoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    if (!u.username && !u.password) return url;
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '';
  }
}
