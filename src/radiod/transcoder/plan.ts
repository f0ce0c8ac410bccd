import { createHash } from 'node:crypto';
import type { ClusterState, MasterInfo } from '../../coordination/cluster-state.js';
import type { TranscodingParams } from '../../coordination/mount.js';
import { masterIcecast } from '../../coordination/host-port.js';
import { scriptProblems, type TranscoderEndpoints } from './script.js';

/**
 * Which transcoders the cluster wants, what each must be started with, and how long this node
 * waits before it campaigns for one. Pure: ClusterState in, decisions out.
 */

export interface TranscoderSpec {
  /** The transcoded (target) mount. */
  mount: string;
  params: TranscodingParams;
  /** Undefined while no master is known: keep campaigning, run nothing. */
  endpoints: TranscoderEndpoints | undefined;
  /**
   * Digest of everything liquidsoap is started with (params, master, credentials): a running
   * process whose fingerprint differs must be restarted. A digest, so no password sits in it.
   */
  fingerprint: string;
}

export interface WantedTranscoders {
  specs: Map<string, TranscoderSpec>;
  /** Transcoding mounts no node can run (reason per mount); nobody campaigns for them. */
  refused: Map<string, string>;
}

export function wantedTranscoders(state: ClusterState, ownAddresses: readonly string[]): WantedTranscoders {
  const specs = new Map<string, TranscoderSpec>();
  const refused = new Map<string, string>();
  const icecast = masterIcecast(state.master, ownAddresses);
  for (const mount of state.mounts.values()) {
    const params = mount.transcoding;
    if (!params) continue;
    // Checked against a placeholder master too, so a bad mount is refused even with no master.
    const endpoints: TranscoderEndpoints = {
      icecast: icecast ?? { host: '127.0.0.1', port: 8000 },
      sourceMount: params.source,
      targetMount: mount.path,
      username: mount.username,
      password: mount.password,
    };
    const problems = scriptProblems(params, endpoints);
    if (problems.length > 0) {
      refused.set(mount.path, problems.join('; '));
      continue;
    }
    const running = icecast ? endpoints : undefined;
    specs.set(mount.path, { mount: mount.path, params, endpoints: running, fingerprint: fingerprint(params, running) });
  }
  return { specs, refused };
}

function fingerprint(params: TranscodingParams, endpoints: TranscoderEndpoints | undefined): string {
  const p = params;
  const canonical = JSON.stringify([
    p.source, p.codec, p.bitrate, p.samplerate, p.channels, p.quality ?? null,
    endpoints ? [endpoints.icecast.host, endpoints.icecast.port, endpoints.sourceMount, endpoints.targetMount,
      endpoints.username, endpoints.password] : null,
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}

/** What to do with the process of one mount on this node. */
export type RunAction = 'start' | 'stop' | 'restart' | 'keep' | 'idle';

/**
 * `leader`: this node's campaign for the mount leads; `running`: fingerprint of the running
 * process, if any; `spec`: undefined when the mount no longer wants a transcoder.
 */
export function runAction(spec: TranscoderSpec | undefined, leader: boolean, running: string | undefined): RunAction {
  const shouldRun = spec !== undefined && leader && spec.endpoints !== undefined;
  if (running === undefined) return shouldRun ? 'start' : 'idle';
  if (!shouldRun) return 'stop';
  return running === spec.fingerprint ? 'keep' : 'restart';
}

/** The transcoders a node should carry when the load is even. */
export function fairShare(transcodingMounts: number, liveNodes: number): number {
  return Math.ceil(transcodingMounts / Math.max(1, liveNodes));
}

export interface SpreadOptions {
  /** Delay per place in the mount's node ranking (rendezvous hashing). */
  rankStepMs: number;
  /** Ranks beyond this many wait no longer. */
  maxRankSteps: number;
  /** Extra delay for a node that already leads its fair share. */
  overloadDelayMs: number;
}

export const DEFAULT_SPREAD: SpreadOptions = { rankStepMs: 300, maxRankSteps: 5, overloadDelayMs: 3000 };

/**
 * How long this node waits before campaigning for a mount (the first candidate key wins).
 *
 * Two rules spread transcoders over the nodes, and neither ever stops a node from campaigning,
 * so every mount keeps a transcoder as long as one node is alive:
 * - Each mount ranks the live nodes by a hash of (node, mount) (rendezvous hashing); a node
 *   waits rankStepMs per place. When the whole cluster starts at once, every mount then goes
 *   to its own first-ranked node, which differs from mount to mount.
 * - A node that already leads at least fairShare(transcodingMounts, liveNodes) transcoders
 *   waits overloadDelayMs more, so a less loaded node wins new mounts.
 * Failover is not delayed: the standbys campaign all along, the oldest candidate takes over.
 */
export function campaignDelayMs(
  input: { node: string; mount: string; liveNodes: Iterable<string>; leading: number; transcodingMounts: number },
  opts: SpreadOptions = DEFAULT_SPREAD,
): number {
  const nodes = new Set(input.liveNodes);
  nodes.add(input.node);
  const own = rendezvousScore(input.node, input.mount);
  let rank = 0;
  for (const other of nodes) {
    if (other === input.node) continue;
    const score = rendezvousScore(other, input.mount);
    if (score > own || (score === own && other < input.node)) rank++;
  }
  const overloaded = input.leading >= fairShare(input.transcodingMounts, nodes.size);
  return Math.min(rank, opts.maxRankSteps) * opts.rankStepMs + (overloaded ? opts.overloadDelayMs : 0);
}

function rendezvousScore(node: string, mount: string): number {
  return parseInt(createHash('sha256').update(`${node}\0${mount}`).digest('hex').slice(0, 12), 16);
}
