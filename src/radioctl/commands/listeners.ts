import http from 'node:http';
import type { Command } from 'commander';
import { readClusterState } from '../../coordination/cluster-view.js';
import { isValidMountPath } from '../../coordination/mount.js';
import { AutoradioError, ErrorCode, errorMessage } from '../../common/errors.js';
import { intFlag } from '../../common/flags.js';
import { usage } from '../usage.js';
import { printJson, withContext, type Output } from '../context.js';
import { describeListeners } from '../format.js';
import { listclientsPath, mergeNodeAnswers, type NodeFailure, type UnansweredCode } from '../node-listeners.js';

/**
 * How long a node may send nothing, and how long its whole answer may take: a dead or trickling
 * one must not hold the list, and a long list on a slow link (some 7 MB for 28,000 listeners)
 * must still arrive.
 */
export interface AskTimes {
  idleMs: number;
  totalMs: number;
}
const NODE_TIMES: AskTimes = { idleMs: 5000, totalMs: 60_000 };

/**
 * Largest answer taken from one node: 10,000 listeners of a few hundred bytes each fit many times
 * over; what is larger is a node (or whatever answers at its address) to name, not to read.
 */
const NODE_ANSWER_MAX_BYTES = 64 * 1024 * 1024;

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
        const result = mergeNodeAnswers(asked);
        if (ctx.json) printJson(ctx, result);
        else ctx.out(describeListeners(result));
      });
    });
}

/**
 * The node's answer body, or why there is none. Bounded in time and size, on a connection of its
 * own: fetch's body read kept a node that sends an endless body as fast as it is read going past
 * its timeout (radioctl hung and its memory grew without end), and nothing bounded the size.
 */
export function askNode(
  address: string | undefined,
  port: number,
  mount: string | undefined,
  password: string,
  times: AskTimes = NODE_TIMES,
): Promise<string | NodeFailure> {
  if (address === undefined) return Promise.resolve({ code: 'no_address', error: 'it publishes no address' });
  return new Promise((resolve) => {
    const req = http.get(
      {
        // The address as published, not through a URL: an IPv6 zone (fe80::1%eth0) has no URL.
        host: address,
        port,
        path: listclientsPath(mount),
        agent: false,
        headers: { authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          idle.refresh();
          size += chunk.length;
          if (size > NODE_ANSWER_MAX_BYTES) giveUp('too_large', `answer over ${NODE_ANSWER_MAX_BYTES} bytes`);
          else chunks.push(chunk);
        });
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          // A redirect is not followed: the answer must come from the node itself.
          settle(res.statusCode === 200 ? body : { code: 'http_status', error: `HTTP ${res.statusCode ?? '?'}: ${body.trim().slice(0, 200)}` });
        });
        res.on('error', (err) => giveUp('unreachable', errorMessage(err)));
      },
    );
    // Plain timers: one for silence (refreshed by each chunk), one over the whole exchange.
    const idle = setTimeout(() => giveUp('timeout', `nothing received for ${times.idleMs} ms`), times.idleMs);
    const total = setTimeout(() => giveUp('timeout', `no complete answer within ${times.totalMs} ms`), times.totalMs);
    // node:http's parser errors (HPE_*): something answered, but not HTTP.
    req.on('error', (err: NodeJS.ErrnoException) => giveUp(err.code?.startsWith('HPE_') ? 'invalid_answer' : 'unreachable', errorMessage(err)));
    let settled = false;
    function settle(answer: string | NodeFailure): void {
      if (settled) return;
      settled = true;
      clearTimeout(idle);
      clearTimeout(total);
      resolve(answer);
    }
    function giveUp(code: UnansweredCode, error: string): void {
      settle({ code, error });
      req.destroy();
    }
  });
}
