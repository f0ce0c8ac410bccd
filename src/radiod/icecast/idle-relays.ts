import type { ClusterState } from '../../coordination/cluster-state.js';

/**
 * A mount off air this long (by the master's reports) gets an on-demand relay on the other nodes.
 * Far above any failover's gap (a new master reports its sources within seconds), so a change of
 * master never flips a relay; below it, an off-air mount costs each node one failed relay
 * attempt every 2 s (`master-update-interval`) and an error line in Icecast's log.
 */
export const IDLE_RELAY_AFTER_MS = 60_000;

/**
 * Which mounts' relays wait for a listener (Icecast's `<on-demand>1`) instead of pulling all the
 * time. Measured on Icecast 2.4.4: an always-on relay of a mount the master answers 404 for
 * retries every 2 s; an on-demand one asks nothing until a listener comes (on the public mount,
 * through its fallback), who then waits about a second for the first byte. Flipping the flag by
 * a reload neither restarts a running relay nor drops its listeners.
 *
 * States per mount: on air (the current master's report lists it), or off air since a time.
 * A mount is idle once it has been off air for IDLE_RELAY_AFTER_MS. A state with no report from
 * a master changes nothing (during an election nobody knows). Mounts this radiod has never seen
 * on air start off air at the first observation, so a restarted radiod does not flip relays
 * before a minute has passed. Pure: time comes in.
 */
type MountAir = { kind: 'on-air' } | { kind: 'off-air'; since: number };

export class IdleRelays {
  private readonly mounts = new Map<string, MountAir>();

  constructor(private readonly idleAfterMs = IDLE_RELAY_AFTER_MS) {}

  /** Folds in the cluster state seen at `now`; returns the mounts whose relay is on demand. */
  observe(state: Pick<ClusterState, 'mounts' | 'nodes' | 'master'>, now: number): ReadonlySet<string> {
    const report = state.master === undefined ? undefined : state.nodes.get(state.master.name);
    for (const path of [...this.mounts.keys()]) if (!state.mounts.has(path)) this.mounts.delete(path);
    const idle = new Set<string>();
    for (const path of state.mounts.keys()) {
      const onAir = report === undefined ? undefined : report.onAir?.[path] !== undefined;
      const was = this.mounts.get(path);
      let next: MountAir;
      if (onAir === true) next = { kind: 'on-air' };
      else if (was === undefined || (onAir === false && was.kind === 'on-air')) next = { kind: 'off-air', since: now };
      else next = was;
      this.mounts.set(path, next);
      if (next.kind === 'off-air' && now - next.since >= this.idleAfterMs) idle.add(path);
    }
    return idle;
  }
}
