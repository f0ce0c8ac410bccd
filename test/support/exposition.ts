import assert from 'node:assert/strict';

/**
 * Checks one scrape of /metrics against Prometheus' conventions: every sample's family has a
 * HELP (not the registry's generic placeholder) and a TYPE, counters and only counters end in
 * `_total`, and no name carries a non-base unit. Returns the family names seen.
 */
export function assertConventionalExposition(text: string): Set<string> {
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  const sampled = new Set<string>();
  for (const line of text.split('\n').filter(Boolean)) {
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      (meta[1] === 'HELP' ? help : type).set(meta[2]!, meta[3]!);
      continue;
    }
    const name = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line)![1]!;
    const family = type.has(name) ? name : name.replace(/_(sum|count)$/, '');
    sampled.add(family);
  }
  for (const family of sampled) {
    assert.ok(type.has(family), `${family}: no TYPE`);
    const h = help.get(family);
    assert.ok(h && !/^autoradio (counter|gauge|summary) /.test(h), `${family}: HELP missing or generic ("${h}")`);
    assert.equal(family.endsWith('_total'), type.get(family) === 'counter', `${family}: _total if and only if a counter`);
    assert.doesNotMatch(family, /_(milliseconds|ms|kbps|kbits?)(_|$)/, `${family}: not a base unit`);
  }
  return sampled;
}
