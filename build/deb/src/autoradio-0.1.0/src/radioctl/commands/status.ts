import type { Command } from 'commander';
import { readClusterState } from '../../coordination/cluster-view.js';
import { summarizeCluster } from '../../coordination/cluster-summary.js';
import { printJson, withContext, type Output } from '../context.js';
import { describeStatus } from '../format.js';

export function registerStatusCommand(program: Command, out: Output): void {
  program
    .command('status')
    .description('show nodes, the master, and listeners per mount across the cluster')
    .action(async (_opts: unknown, cmd: Command) => {
      await withContext(cmd, out, async (ctx) => {
        const summary = summarizeCluster(await readClusterState(ctx.client));
        if (ctx.json) printJson(ctx, summary);
        else ctx.out(describeStatus(summary));
      });
    });
}
