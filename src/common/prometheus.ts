/**
 * A small Prometheus registry: counters, gauges and summaries (sum and count only) with labels,
 * rendered in the text exposition format 0.0.4. Pure: no I/O; the HTTP endpoint lives in
 * metrics-server.ts.
 */

export type Labels = Readonly<Record<string, string>>;
export type MetricType = 'counter' | 'gauge' | 'summary';

interface Series {
  labels: Labels;
  value: number;
  /** Summaries only. */
  count: number;
}

interface Family {
  name: string;
  type: MetricType;
  help: string;
  series: Map<string, Series>;
}

/**
 * Series per family. Label values come from etcd (node names, mount paths) or fixed sets, never
 * from a request, but a bad etcd value must not make a scrape grow without bound either.
 */
export const MAX_SERIES_PER_FAMILY = 2000;

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** A metric or label name made of Prometheus' allowed characters. */
export function promName(raw: string): string {
  const s = raw.replace(/[^a-zA-Z0-9_:]/g, '_');
  return /^[0-9]/.test(s) ? `_${s}` : s;
}

function labelName(raw: string): string {
  return promName(raw).replace(/:/g, '_');
}

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function seriesKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}\u0000${labels[k]}`)
    .join('\u0001');
}

function renderLabels(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${escapeLabelValue(labels[k]!)}"`).join(',')}}`;
}

export class PrometheusRegistry {
  private readonly families = new Map<string, Family>();
  /** Family of each name as callers spell it; null for names that cannot be made valid. */
  private readonly byRawName = new Map<string, Family | null>();
  private readonly collectors = new Set<() => void>();
  private droppedSeries = 0;

  /** Sets the HELP text of a family (created on first use otherwise, with a generic text). */
  describe(name: string, type: MetricType, help: string): void {
    const f = this.family(name, type);
    if (f) f.help = help;
  }

  /** Adds `value` (>= 0) to a counter. */
  inc(name: string, value = 1, labels: Labels = {}): void {
    if (!(value >= 0) || !Number.isFinite(value)) return;
    const s = this.series(name, 'counter', labels);
    if (s) s.value += value;
  }

  set(name: string, value: number, labels: Labels = {}): void {
    const s = this.series(name, 'gauge', labels);
    if (s) s.value = value;
  }

  /** Records one observation into a summary without quantiles (`_sum` and `_count`). */
  observe(name: string, value: number, labels: Labels = {}): void {
    const s = this.series(name, 'summary', labels);
    if (!s) return;
    s.value += value;
    s.count += 1;
  }

  /** Drops every series of a gauge family: for gauges rebuilt from a snapshot at each scrape. */
  reset(name: string): void {
    this.families.get(promName(name))?.series.clear();
  }

  /** Current value of one series (tests and collectors). */
  value(name: string, labels: Labels = {}): number | undefined {
    return this.families.get(promName(name))?.series.get(seriesKey(normaliseLabels(labels)))?.value;
  }

  /** Runs before every render: refreshes gauges computed from another source of truth. */
  addCollector(collect: () => void): () => void {
    this.collectors.add(collect);
    return () => this.collectors.delete(collect);
  }

  /** The text exposition format, version 0.0.4. */
  render(): string {
    for (const c of this.collectors) {
      try {
        c();
      } catch {
        // A failing collector must not take the whole scrape down; its series stay stale.
      }
    }
    const out: string[] = [];
    const names = [...this.families.keys()].sort();
    for (const n of names) {
      const f = this.families.get(n)!;
      out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`);
      out.push(`# TYPE ${f.name} ${f.type}`);
      for (const s of f.series.values()) {
        const l = renderLabels(s.labels);
        if (f.type === 'summary') {
          out.push(`${f.name}_sum${l} ${formatValue(s.value)}`);
          out.push(`${f.name}_count${l} ${s.count}`);
        } else {
          out.push(`${f.name}${l} ${formatValue(s.value)}`);
        }
      }
    }
    out.push('# HELP autoradio_prometheus_dropped_series_total Series refused because a family reached its limit');
    out.push('# TYPE autoradio_prometheus_dropped_series_total counter');
    out.push(`autoradio_prometheus_dropped_series_total ${this.droppedSeries}`);
    return `${out.join('\n')}\n`;
  }

  private family(rawName: string, type: MetricType): Family | undefined {
    // Names come from a small fixed set on hot paths (every redirect): convert each only once.
    let f = this.byRawName.get(rawName);
    if (f === undefined) {
      const name = promName(rawName);
      f = NAME_RE.test(name) ? this.families.get(name) : null;
      if (f === undefined) {
        f = { name, type, help: `autoradio ${type} ${name}`, series: new Map() };
        this.families.set(name, f);
      }
      this.byRawName.set(rawName, f);
    }
    if (f === null) return undefined;
    // One name, one type: a mismatched call is a programming error, dropped rather than thrown
    // so that metrics can never break the code path they observe.
    return f.type === type ? f : undefined;
  }

  private series(rawName: string, type: MetricType, labels: Labels): Series | undefined {
    const f = this.family(rawName, type);
    if (!f) return undefined;
    const norm = normaliseLabels(labels);
    const key = seriesKey(norm);
    let s = f.series.get(key);
    if (!s) {
      if (f.series.size >= MAX_SERIES_PER_FAMILY) {
        this.droppedSeries++;
        return undefined;
      }
      s = { labels: norm, value: 0, count: 0 };
      f.series.set(key, s);
    }
    return s;
  }
}

function normaliseLabels(labels: Labels): Labels {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) out[labelName(k)] = String(v);
  return out;
}

/** Content-Type of the text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
