import { pino } from 'pino';
import type { ClusterState } from '../../src/coordination/cluster-state.js';
import type { Mount } from '../../src/coordination/mount.js';
import type { NodeStatus } from '../../src/coordination/node-status.js';
import { Balancer } from '../../src/redirectord/balancer/balancer.js';
import { parsePolicy } from '../../src/redirectord/balancer/policy.js';
import { buildHttpApp } from '../../src/redirectord/http/app.js';
import type { HttpAppDeps } from '../../src/redirectord/http/deps.js';
import { nodeStatus, RecordingMetrics } from './fixtures.js';
export { RecordingMetrics } from './fixtures.js';

/** Shared builders for the http-*.test.ts files (not a test file itself). */

export const SECRET = 'Zq9-very-secret-pw';

export function mount(path: string, over: Partial<Mount> = {}): Mount {
  return { path, username: 'source', password: SECRET, ...over };
}

export function node(name: string, over: Partial<NodeStatus> = {}): NodeStatus {
  return nodeStatus(name, { addresses: ['192.0.2.10'], reportedAt: Date.now(), ...over });
}

export function state(nodes: NodeStatus[], mounts: Mount[], over: Partial<ClusterState> = {}): ClusterState {
  return {
    nodes: new Map(nodes.map((n) => [n.name, n])),
    mounts: new Map(mounts.map((m) => [m.path, m])),
    master: nodes[0] ? { name: nodes[0].name, addresses: nodes[0].addresses, icecastPort: nodes[0].icecastPort } : undefined,
    revision: '10',
    connected: true,
    membershipSerial: 3,
    ...over,
  };
}


export async function makeApp(s: ClusterState, over: Partial<HttpAppDeps> = {}) {
  const metrics = new RecordingMetrics();
  let current = s;
  const deps: HttpAppDeps = {
    state: { current: () => current },
    domain: 'radio.example.org',
    nodeName: 'node1',
    balancer: new Balancer(parsePolicy('listeners_available,listeners_score,weighted'), () => 0.5),
    enableIcecastProxy: true,
    log: pino({ level: 'silent' }),
    metrics,
    httpPort: 80,
    ...over,
  };
  const built = await buildHttpApp(deps);
  return { ...built, metrics, setState: (n: ClusterState) => void (current = n) };
}
