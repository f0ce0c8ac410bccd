import type { Command } from 'commander';
import { readClusterState } from '../../coordination/cluster-view.js';
import { isValidMountPath } from '../../coordination/mount.js';
import { AutoradioError, ErrorCode, errorMessage } from '../../common/errors.js';
import { intFlag } from '../../common/flags.js';
import { usage } from '../usage.js';
import { printJson, withContext, type Output } from '../context.js';
import { describeListeners } from '../format.js';
import { listclientsUrl, parseNodeAnswer, sortListeners, type ClusterListeners } from '../node-listeners.js';

/** How long one node gets to answer: a dead one must not hold the whole list. */
const NODE_TIMEOUT_MS = 5000;

export function registerListenersCommand(program: Command, out: Output): void {
  program
    .command('listeners')
    .argument('[mount]', 'only this mount')
    .description("list the listeners connected now on every node, with their own address, user agent and time connected")
    .option('--http-port <port>', "the nodes' front door port", usage(intFlag('--http-port', 1, 65535)), 80)
    .action(async (mount: string | undefined, opts: { httpPort: number }, cmd: Command) => {
      if (mount !== undefined && !isValidMountPath(mount)) {
        throw new AutoradioError(ErrorCode.invalidMountPath, `invalid mount path: ${JSON.stringify(mount)}`);
      }
      await withContext(cmd, out, async (ctx) => {
        const state = await readClusterState(ctx.client);
        const password = state.icecastAdminPassword;
        if (password === undefined) throw new AutoradioError(ErrorCode.invalidConfig, 'the cluster has no Icecast admin password in etcd yet (no radiod has started)');
        const asked = await Promise.all(
          [...state.nodes.values()].map(async (node) => ({ node: node.name, answer: await askNode(node.addresses[0], opts.httpPort, mount, password) })),
        );
        const result: ClusterListeners = { listeners: [], unanswered: [] };
        for (const { node, answer } of asked) {
          const parsed = typeof answer === 'string' ? parseNodeAnswer(node, answer) : answer;
          if (Array.isArray(parsed)) result.listeners.push(...parsed);
          else result.unanswered.push({ node, error: parsed.error });
        }
        result.listeners = sortListeners(result.listeners);
        if (ctx.json) printJson(ctx, result);
        else ctx.out(describeListeners(result));
      });
    });
}

/** The node's answer body, or why there is none. */
async function askNode(address: string | undefined, port: number, mount: string | undefined, password: string): Promise<string | { error: string }> {
  if (address === undefined) return { error: 'it publishes no address' };
  try {
    const res = await fetch(listclientsUrl(address, port, mount), {
      headers: { authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` },
      signal: AbortSignal.timeout(NODE_TIMEOUT_MS),
      redirect: 'error',
    });
    const body = await res.text();
    return res.status === 200 ? body : { error: `HTTP ${res.status}: ${body.trim().slice(0, 200)}` };
  } catch (err) {
    return { error: errorMessage(err) };
  }
}
