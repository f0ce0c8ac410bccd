import { AutoradioError, ErrorCode } from '../common/errors.js';
import { mountProblems, mountReferenceProblems, type Mount } from './mount.js';

/** The file `radioctl backup` writes and `radioctl restore` reads. */
export interface Backup {
  version: 1;
  mounts: Mount[];
}

/** Validates a whole backup (every mount and every reference between them) or throws. Pure. */
export function parseBackup(input: unknown): Backup {
  const fail = (msg: string): never => {
    throw new AutoradioError(ErrorCode.invalidBackup, `invalid backup: ${msg}; nothing was written`);
  };
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return fail('not a JSON object');
  const b = input as Record<string, unknown>;
  if (b['version'] !== 1) return fail(`unsupported version ${JSON.stringify(b['version'])} (expected 1)`);
  if (!Array.isArray(b['mounts'])) return fail('"mounts" must be an array');
  const extra = Object.keys(b).filter((k) => k !== 'version' && k !== 'mounts');
  if (extra.length > 0) return fail(`unknown fields ${extra.join(', ')}`);
  const mounts = b['mounts'] as unknown[];
  const byPath = new Map<string, Mount>();
  mounts.forEach((m, i) => {
    const problems = mountProblems(m);
    if (problems.length > 0) fail(`mount #${i + 1}: ${problems.join('; ')}`);
    const mount = m as Mount;
    if (byPath.has(mount.path)) fail(`mount ${mount.path} appears twice`);
    byPath.set(mount.path, mount);
  });
  for (const mount of byPath.values()) {
    const problems = mountReferenceProblems(mount, byPath);
    if (problems.length > 0) fail(problems.join('; '));
  }
  return { version: 1, mounts: [...byPath.values()] };
}
