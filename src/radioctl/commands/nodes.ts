import { hostname } from 'node:os';
import type { Command } from 'commander';
import type { Etcd3 } from 'etcd3';
import { AutoradioError, ErrorCode } from '../../common/errors.js';
import { ELECTION_ROOT, drainKey, forgottenKey, nodeKey } from '../../coordination/keys.js';
import { NODE_NAME_RE } from '../../coordination/node-status.js';
import { readClusterState } from '../../coordination/cluster-view.js';
import { drainDuty, type DrainDuty } from '../../coordination/drain-handover.js';
import { printJson, withContext, type Output } from '../context.js';

/** What `radioctl drain` stores; only the key's presence matters to the daemons. */
export interface DrainRecord {
  /** ISO 8601 */
  since: string;
  /** The host radioctl ran on, for the operator who wonders who drained it. */
  by: string;
}

function checkedName(name: string): string {
  if (!NODE_NAME_RE.test(name)) {
    throw new AutoradioError(ErrorCode.invalidNodeName, `invalid node name "${name}": 1-63 letters, digits or dashes`);
  }
  return name;
}

/** What `radioctl forget-node` stores: like a drain, who and when, for people. */
export type ForgottenRecord = DrainRecord;

function operatorRecord(): DrainRecord {
  return { since: new Date().toISOString(), by: hostname() };
}

/**
 * Whether a candidate key names the node: its radiod keeps its election lease alive, so it runs
 * even when its status key is gone (its presence lease expired on its own).
 */
async function holdsCandidacy(client: Etcd3, name: string): Promise<boolean> {
  const values = await client.getAll().prefix(ELECTION_ROOT).strings();
  return Object.values(values).some((v) => {
    try {
      return (JSON.parse(v) as { name?: unknown }).name === name;
    } catch {
      return false;
    }
  });
}

/** What `radioctl drain` says about the node's roles, for people. */
export function drainRolesText(duty: DrainDuty): string {
  if (duty.kind === 'hand-over') return `its master role and transcoders move to ${duty.successors.join(', ')}`;
  if (duty.kind === 'hold') return 'no other live node can take over, so it keeps the master role and its transcoders until one can';
  return '';
}

/**
 * Node lifecycle: drain (no new listeners, and the node hands its master role and transcoders
 * over unless no other node can take them; the drain key has no lease, so it outlives the
 * node's restart during an upgrade), undrain, and forget-node (its presence lease revoked, its drain
 * key removed, a forgotten marker written: it leaves status, DNS and the balancers at once
 * instead of at lease expiry, and the cluster metrics stop reporting it down).
 */
export function registerNodeCommands(program: Command, out: Output): void {
  program
    .command('drain')
    .description('send no new listeners to NODE and move its master role and transcoders to other nodes; listeners already connected stay (undo with undrain)')
    .argument('<node>', 'node name (radiod --name)')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const node = checkedName(name);
      await withContext(cmd, out, async (ctx) => {
        const record: DrainRecord = operatorRecord();
        await ctx.client.put(drainKey(node)).value(JSON.stringify(record));
        // Read after the write: the same rule radiod applies to the state that includes the drain.
        const state = await readClusterState(ctx.client);
        const present = state.nodes.has(node);
        const duty = drainDuty(state, node);
        const handsOver = duty.kind === 'hand-over';
        if (ctx.json) {
          printJson(ctx, { node, draining: true, present, handsOver, ...(duty.kind === 'hand-over' ? { successors: duty.successors } : {}),
            ...(duty.kind === 'hold' ? { keepsRolesBecause: duty.reason } : {}) });
        } else if (!present) ctx.out(`${node} drained: no new listeners (it is not running now; the drain applies when it starts)`);
        else ctx.out(`${node} drained: no new listeners; ${drainRolesText(duty)}`);
      });
    });

  program
    .command('undrain')
    .description('let NODE take new listeners again')
    .argument('<node>', 'node name (radiod --name)')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const node = checkedName(name);
      await withContext(cmd, out, async (ctx) => {
        const res = await ctx.client.delete().key(drainKey(node)).exec();
        const was = Number(res.deleted) > 0;
        if (ctx.json) printJson(ctx, { node, draining: false, wasDraining: was });
        else ctx.out(was ? `${node} undrained: it takes new listeners again` : `${node} was not drained`);
      });
    });

  program
    .command('forget-node')
    .description('remove a dead NODE from the cluster for good (refused while it is present, unless --force)')
    .argument('<node>', 'node name (radiod --name)')
    .option('--force', 'also when the node is present: revoke its lease (a running radiod registers again)')
    .action(async (name: string, opts: { force?: boolean }, cmd: Command) => {
      const node = checkedName(name);
      await withContext(cmd, out, async (ctx) => {
        const res = await ctx.client.get(nodeKey(node)).exec();
        const kv = res.kvs[0];
        if ((kv || (await holdsCandidacy(ctx.client, node))) && !opts.force) {
          throw new AutoradioError(
            ErrorCode.nodeAlive,
            `${node} is present (its lease holds, or it is a candidate for master or a transcoder): stop its radiod first, or pass --force`,
          );
        }
        // Revoking the presence lease drops the node's status at once. Its candidacies live on
        // its election lease, which is left to expire: revoking a live master's lease without a
        // deposition's wait would let the next master take sources within its window.
        if (kv && kv.lease !== '0') await revokeLease(ctx.client, kv.lease);
        await ctx.client.delete().key(nodeKey(node)).exec();
        await ctx.client.delete().key(drainKey(node)).exec();
        // Metrics stop expecting it (no "node down" series); its radiod deletes this if it runs.
        const record: ForgottenRecord = operatorRecord();
        await ctx.client.put(forgottenKey(node)).value(JSON.stringify(record));
        if (ctx.json) printJson(ctx, { node, forgotten: true, wasPresent: kv !== undefined });
        else ctx.out(`${node} forgotten${kv ? ' (it was present: its lease was revoked)' : ''}`);
      });
    });
}

async function revokeLease(client: Etcd3, leaseId: string): Promise<void> {
  try {
    await client.leaseClient.leaseRevoke({ ID: leaseId });
  } catch (err) {
    // Already expired between the read and the revoke: the node is gone, which was the aim.
    if (!/requested lease not found/i.test(String((err as Error).message))) throw err;
  }
}
