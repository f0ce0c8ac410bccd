import type { Command } from 'commander';
import { connectEtcd, type Etcd3 } from '../coordination/client.js';
import type { EtcdFlags } from '../common/flags.js';

/** What every command gets: an etcd client and a way to print for people or for machines. */
export interface CommandContext {
  client: Etcd3;
  json: boolean;
  out: (text: string) => void;
}

export type Output = (text: string) => void;

/** Runs `fn` with a connected client and closes it afterwards, whatever happens. */
export async function withContext(
  cmd: Command,
  out: Output,
  fn: (ctx: CommandContext) => Promise<void>,
): Promise<void> {
  const opts = cmd.optsWithGlobals<EtcdFlags & { json?: boolean }>();
  const client = connectEtcd(opts);
  try {
    await fn({ client, json: Boolean(opts.json), out });
  } finally {
    client.close();
  }
}

export function printJson(ctx: CommandContext, value: unknown): void {
  ctx.out(JSON.stringify(value, null, 2));
}
