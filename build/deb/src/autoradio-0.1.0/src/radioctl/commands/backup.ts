import type { Command } from 'commander';
import { MountStore } from '../../coordination/mount-store.js';
import { AutoradioError, ErrorCode } from '../../common/errors.js';
import { printJson, withContext, type Output } from '../context.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export function registerBackupCommands(program: Command, out: Output): void {
  program
    .command('backup')
    .description('print every mount, with credentials, as JSON (keep it safe)')
    .action(async (_opts: unknown, cmd: Command) => {
      await withContext(cmd, out, async (ctx) => {
        printJson(ctx, await new MountStore(ctx.client).backup());
      });
    });

  program
    .command('restore')
    .description('replace every mount with those of a backup read from standard input')
    .action(async (_opts: unknown, cmd: Command) => {
      const text = await readStdin();
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (err) {
        throw new AutoradioError(ErrorCode.invalidBackup, `invalid backup: not JSON (${(err as Error).message}); nothing was written`);
      }
      await withContext(cmd, out, async (ctx) => {
        const result = await new MountStore(ctx.client).restore(parsed);
        if (ctx.json) printJson(ctx, result);
        else ctx.out(`restored ${result.written} mounts, removed ${result.deleted}`);
      });
    });
}
