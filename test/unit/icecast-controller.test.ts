import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { emptyClusterState, type ClusterState } from '../../src/coordination/cluster-state.js';
import type { ClusterStateSource } from '../../src/coordination/cluster-view.js';
import type { Mount } from '../../src/coordination/mount.js';
import { IcecastController } from '../../src/radiod/icecast/controller.js';
import { DEBIAN_ICECAST_PATHS } from '../../src/radiod/icecast/render.js';
import { nodeStatus, RecordingMetrics } from '../support/fixtures.js';

/** The controller's decisions (when to render, write and reload) against a state it is handed. */

class HandedState implements ClusterStateSource {
  private readonly listeners = new Set<(s: ClusterState) => void>();
  constructor(private state: ClusterState) {}
  current(): ClusterState {
    return this.state;
  }
  onChange(listener: (s: ClusterState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  set(state: ClusterState): void {
    this.state = state;
  }
}

const mount = (path: string): Mount => ({ path, username: 'source', password: 'source-pass1' });
const master = { name: 'm', addresses: ['192.0.2.1'], icecastPort: 8001 };

async function setup(initial: ClusterState) {
  const dir = await mkdtemp(join(tmpdir(), 'autoradio-controller-'));
  const source = new HandedState(initial);
  const metrics = new RecordingMetrics();
  let reloads = 0;
  const controller = new IcecastController({
    source,
    node: { name: 'n1', addresses: ['192.0.2.2'], icecastPort: 8000, hostname: 'radio.test', maxListeners: 0, paths: DEBIAN_ICECAST_PATHS },
    secrets: { adminPassword: 'admin-secret-123', relayPassword: 'relay-secret-123' },
    configPath: join(dir, 'icecast.xml'),
    reloader: {
      description: 'counted',
      reload: async () => {
        reloads++;
        return true;
      },
    },
    log: pino({ level: 'silent' }),
    metrics,
  });
  return {
    source,
    controller,
    configPath: join(dir, 'icecast.xml'),
    renders: () => metrics.count('icecast.config_renders'),
    reloads: () => reloads,
    async close() {
      await controller.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function loaded(mounts: Map<string, Mount>, revision: string): ClusterState {
  return { ...emptyClusterState(), mounts, master, revision, connected: true };
}

test('nothing is rendered or written before the cluster state is loaded', async () => {
  const t = await setup(emptyClusterState());
  try {
    await t.controller.start();
    t.controller.icecastStarted();
    await t.controller.syncNow();
    assert.equal(existsSync(t.configPath), false);
    assert.equal(t.renders(), 0);
    t.source.set(loaded(new Map([['/a.mp3', mount('/a.mp3')]]), '5'));
    await t.controller.syncNow();
    assert.match(await readFile(t.configPath, 'utf8'), /<local-mount>\/_relay\/a\.mp3<\/local-mount>/);
  } finally {
    await t.close();
  }
});

test('another node status report neither renders nor reloads; a mount change does both', async () => {
  const mounts = new Map([['/a.mp3', mount('/a.mp3')]]);
  const t = await setup(loaded(mounts, '5'));
  try {
    await t.controller.start();
    assert.equal(t.renders(), 1);
    assert.equal(t.reloads(), 1);
    // Same mounts map, same master: only a node's status moved.
    t.source.set({ ...loaded(mounts, '6'), nodes: new Map([['n2', nodeStatus('n2', { listeners: 7 })]]) });
    await t.controller.syncNow();
    assert.equal(t.renders(), 1);
    assert.equal(t.reloads(), 1);
    t.source.set(loaded(new Map([...mounts, ['/b.mp3', mount('/b.mp3')]]), '7'));
    await t.controller.syncNow();
    assert.equal(t.renders(), 2);
    assert.equal(t.reloads(), 2);
    // A new master is a render input too.
    t.source.set({ ...t.source.current(), master: { ...master, name: 'm2' } });
    await t.controller.syncNow();
    assert.equal(t.renders(), 3);
  } finally {
    await t.close();
  }
});
