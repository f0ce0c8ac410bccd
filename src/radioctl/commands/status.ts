import type { Command } from 'commander';
import { readClusterState } from '../../coordination/cluster-view.js';
import { summarizeCluster } from '../../coordination/cluster-summary.js';
import { printJson, withContext, type Output } from '../context.js';
import { describeCertificate, describeStatus } from '../format.js';
import { summarizeCertificate } from '../../coordination/acme.js';

export function registerStatusCommand(program: Command, out: Output): void {
  program
    .command('status')
    .description('show nodes, the master, and listeners per mount across the cluster')
    .action(async (_opts: unknown, cmd: Command) => {
      await withContext(cmd, out, async (ctx) => {
        const state = await readClusterState(ctx.client);
        const summary = summarizeCluster(state);
        // The cluster's ACME certificate: operator files (--tls-cert) are per node and not in etcd.
        const certificate = summarizeCertificate(state.acme?.certificate, Date.now());
        if (ctx.json) printJson(ctx, { ...summary, ...(certificate ? { certificate } : {}) });
        else ctx.out(`${describeStatus(summary)}\n${describeCertificate(certificate)}`);
      });
    });
}
