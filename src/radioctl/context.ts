import type { Command } from 'commander';
import { connectEtcd, type Etcd3 } from '../coordination/client.js';
import type { EtcdFlags } from '../common/flags.js';
import { AutoradioError, ErrorCode, errorMessage } from '../common/errors.js';
import { DEFAULT_CONFIG_FILE, readConfigFile } from './config-file.js';
import { assertEtcdUrls } from './etcd-urls.js';

/** What every command gets: an etcd client and a way to print for people or for machines. */
export interface CommandContext {
  client: Etcd3;
  json: boolean;
  out: (text: string) => void;
}

export type Output = (text: string) => void;

export interface GlobalFlags extends EtcdFlags {
  json?: boolean;
  config: string;
}

const ETCD_FLAGS = ['etcdUrls', 'etcdCa', 'etcdCert', 'etcdKey'] as const;

/**
 * The etcd flags in force: a flag or its environment variable first, then the config file,
 * then the built-in default.
 */
export function resolveEtcdFlags(cmd: Command): EtcdFlags {
  const opts = cmd.optsWithGlobals<GlobalFlags>();
  const unset = (key: (typeof ETCD_FLAGS)[number]) => {
    const source = cmd.getOptionValueSourceWithGlobals(key);
    return source === undefined || source === 'default';
  };
  const flags: EtcdFlags = { etcdUrls: opts.etcdUrls };
  for (const key of ETCD_FLAGS) if (!unset(key) && opts[key] !== undefined) Object.assign(flags, { [key]: opts[key] });
  if (!ETCD_FLAGS.some(unset)) return flags;
  const explicit = cmd.getOptionValueSourceWithGlobals('config') !== 'default';
  const fromFile = readConfigFile(opts.config ?? DEFAULT_CONFIG_FILE, explicit);
  for (const key of ETCD_FLAGS) if (unset(key) && fromFile[key] !== undefined) Object.assign(flags, { [key]: fromFile[key] });
  return flags;
}

/** Runs `fn` with a connected client and closes it afterwards, whatever happens. */
export async function withContext(
  cmd: Command,
  out: Output,
  fn: (ctx: CommandContext) => Promise<void>,
): Promise<void> {
  const flags = resolveEtcdFlags(cmd);
  assertEtcdUrls(flags.etcdUrls);
  let client: Etcd3;
  try {
    client = connectEtcd(flags);
  } catch (err) {
    // Bad TLS settings: a TLS file that cannot be read, or a certificate without its key.
    throw new AutoradioError(ErrorCode.invalidConfig, `etcd settings: ${errorMessage(err)}`, { cause: err });
  }
  try {
    await fn({ client, json: Boolean(cmd.optsWithGlobals<GlobalFlags>().json), out });
  } finally {
    client.close();
  }
}

/**
 * JSON for machines that people also read in a terminal: JSON.stringify leaves DEL, C1 controls
 * (U+009B is CSI to VTE and xterm) and bidirectional overrides as they are, and values such as
 * listeners' user agents are chosen by strangers. They can only occur inside strings, where
 * `\uXXXX` is the same value.
 */
export function printJson(ctx: CommandContext, value: unknown): void {
  ctx.out(JSON.stringify(value, null, 2).replace(/[\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}
