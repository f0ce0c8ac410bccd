import { readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import type { Cluster } from '../support/cluster.js';
import { processAlive } from '../support/netns.js';

/**
 * Transcoders of `label` per node. All namespaces share one pid namespace (a `pgrep` inside
 * one would see every node's processes, and other runs'), so a process is attributed to a node
 * by its network namespace.
 */
export function transcoderPids(c: Cluster, label: string): Map<string, number[]> {
  const nsInode = new Map<number, string>();
  for (const n of c.nodes) {
    try {
      nsInode.set(statSync(`/run/netns/${n.ns}`).ino, n.name);
    } catch {
      // namespace gone (cluster stopping)
    }
  }
  const found = new Map<string, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (!argv.includes(label)) continue;
      const pid = Number(entry);
      if (!processAlive(pid)) continue;
      const ino = Number(/net:\[(\d+)\]/.exec(readlinkSync(`/proc/${entry}/ns/net`))?.[1]);
      const node = nsInode.get(ino);
      if (node) found.set(node, [...(found.get(node) ?? []), pid]);
    } catch {
      // exited while we looked
    }
  }
  return found;
}
