import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  selfPct: number;
}

/** Where the busy time went: self time per function and per package/area, from --cpu-prof files. */
export async function summarizeProfiles(
  dir: string,
  top = 20,
): Promise<{ functions: ProfileEntry[]; areas: ProfileEntry[]; inclusive: ProfileEntry[] }> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
  const self = new Map<string, number>();
  const areas = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  for (const f of files) {
    const p = JSON.parse(await readFile(join(dir, f), 'utf8')) as Profile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    p.samples.forEach((id, i) => {
      const n = byId.get(id);
      if (!n) return;
      const dt = p.timeDeltas[i] ?? 0;
      // Percentages are of busy time: an idle event loop says nothing about cost.
      if (n.callFrame.functionName === '(idle)') return;
      total += dt;
      const cf = n.callFrame;
      const key = frameKey(cf);
      self.set(key, (self.get(key) ?? 0) + dt);
      const seen = new Set<string>();
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const k = frameKey(byId.get(at)!.callFrame);
        if (seen.has(k)) continue;
        seen.add(k);
        inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
      }
      areas.set(areaOf(cf.url, cf.functionName), (areas.get(areaOf(cf.url, cf.functionName)) ?? 0) + dt);
    });
  }
  const sorted = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, t]) => ({ name, selfPct: Math.round((t / total) * 1000) / 10 }));
  inclusive.delete('(root)');
  return { functions: sorted(self), areas: sorted(areas), inclusive: sorted(inclusive) };
}

function frameKey(cf: ProfileNode['callFrame']): string {
  const file = cf.url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, 'node_modules/').replace(/^.*\/dist\//, 'dist/');
  return `${cf.functionName || '(anonymous)'} ${file ? `${file}:${cf.lineNumber + 1}` : ''}`.trim();
}

function areaOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  const d = /dist\/(.*)$/.exec(url);
  if (d) return `dist/${d[1]}`;
  if (url.startsWith('node:')) return url.split('/')[0]!.replace(/^node:/, 'node:') + (url.includes('/') ? `/${url.split('/')[1]}` : '');
  return url;
}
