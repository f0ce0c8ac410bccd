import { AutoradioError, ErrorCode } from '../../common/errors.js';
import { FILTERS } from './filters.js';
import { PICKERS } from './pickers.js';
import { SCORERS } from './scorers.js';
import type { NodeFilter, NodePicker, NodeScorer, Policy } from './types.js';

export type { Policy } from './types.js';

export const DEFAULT_LB_POLICY = 'listeners_available,listeners_score,weighted';

const filtersByName = new Map(FILTERS.map((f) => [f.name, f]));
const scorersByName = new Map(SCORERS.map((s) => [s.name, s]));
const pickersByName = new Map(PICKERS.map((p) => [p.name, p]));

function known(): string {
  return (
    `filters: ${[...filtersByName.keys()].join(', ')}; scorers: ${[...scorersByName.keys()].join(', ')}; ` +
    `policies: ${[...pickersByName.keys()].join(', ')}`
  );
}

function fail(sentence: string): never {
  throw new AutoradioError(ErrorCode.invalidPolicy, `invalid --lb-policy: ${sentence}`);
}

/**
 * Parses `--lb-policy`: filters and scorers in any order, then exactly one policy, last.
 * Throws AutoradioError(invalidPolicy) with one sentence naming the problem.
 */
export function parsePolicy(spec: string): Policy {
  const names = spec.split(',').map((s) => s.trim());
  if (spec.trim() === '') fail(`the list is empty; expected e.g. "${DEFAULT_LB_POLICY}"`);
  if (names.some((n) => n === '')) fail(`"${spec}" has an empty element between commas`);
  const filters: NodeFilter[] = [];
  const scorers: NodeScorer[] = [];
  let picker: NodePicker | undefined;
  const seen = new Set<string>();
  names.forEach((name, i) => {
    if (seen.has(name)) fail(`"${name}" is listed twice`);
    seen.add(name);
    const isLast = i === names.length - 1;
    const f = filtersByName.get(name);
    const s = scorersByName.get(name);
    const p = pickersByName.get(name);
    if (f) filters.push(f);
    else if (s) scorers.push(s);
    else if (p) {
      if (!isLast) fail(`the policy "${name}" must come last, after the filters and scorers`);
      picker = p;
    } else fail(`unknown name "${name.slice(0, 40)}" (known ${known()})`);
  });
  if (!picker) {
    fail(`"${spec}" does not end with a policy (one of ${[...pickersByName.keys()].join(', ')})`);
  }
  return { filters, scorers, picker, text: names.join(',') };
}
