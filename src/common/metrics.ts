import { StatsD } from 'hot-shots';
import type { Labels, PrometheusRegistry } from './prometheus.js';
import { COUNTERS, GAUGES, TIMINGS, type EventMetric } from './metric-catalogue.js';

/**
 * The counters and gauges every program sends, to statsd and/or a Prometheus registry; a no-op
 * when neither is configured. Names are dotted (`http.redirect`); variable parts such as a node
 * name or a mount path go in `labels`, which Prometheus keeps as labels and statsd gets folded
 * into the name (`http.redirect` + {node: n1} -> `http.redirect.n1`).
 */
export interface Metrics {
  increment(name: string, value?: number, labels?: Labels): void;
  gauge(name: string, value: number, labels?: Labels): void;
  timing(name: string, ms: number, labels?: Labels): void;
  close(): Promise<void>;
}

export type { Labels } from './prometheus.js';

class NullMetrics implements Metrics {
  increment(): void {}
  gauge(): void {}
  timing(): void {}
  async close(): Promise<void> {}
}

/** The statsd name for a labelled metric: label values (sanitised) appended in order. */
export function foldLabels(name: string, labels?: Labels): string {
  if (!labels) return name;
  const values = Object.values(labels);
  return values.length === 0 ? name : `${name}.${values.map(sanitizeMetricPart).join('.')}`;
}

class StatsdMetrics implements Metrics {
  constructor(private readonly client: StatsD) {}
  increment(name: string, value = 1, labels?: Labels): void {
    this.client.increment(foldLabels(name, labels), value);
  }
  gauge(name: string, value: number, labels?: Labels): void {
    this.client.gauge(foldLabels(name, labels), value);
  }
  timing(name: string, ms: number, labels?: Labels): void {
    this.client.timing(foldLabels(name, labels), ms);
  }
  close(): Promise<void> {
    return new Promise((resolve) => this.client.close(() => resolve()));
  }
}

/**
 * Every Metrics call as a Prometheus series named by metric-catalogue.ts (with its HELP); a name
 * missing there becomes `autoradio_<name>_total` / `autoradio_<name>` (dots become `_`). Timings
 * arrive in milliseconds and are exported as a summary in seconds.
 */
export class PrometheusMetrics implements Metrics {
  /** Families described so far: each program lists only the families it uses. */
  private readonly described = new Set<EventMetric>();
  constructor(private readonly registry: PrometheusRegistry) {}
  increment(name: string, value = 1, labels?: Labels): void {
    this.registry.inc(this.family(COUNTERS[name]) ?? `autoradio_${name}_total`, value, labels);
  }
  gauge(name: string, value: number, labels?: Labels): void {
    this.registry.set(this.family(GAUGES[name]) ?? `autoradio_${name}`, value, labels);
  }
  timing(name: string, ms: number, labels?: Labels): void {
    this.registry.observe(this.family(TIMINGS[name]) ?? `autoradio_${name}_seconds`, ms / 1000, labels);
  }
  async close(): Promise<void> {}

  private family(m: EventMetric | undefined): string | undefined {
    if (m && !this.described.has(m)) {
      this.registry.describe(m.name, m.type, m.help);
      this.described.add(m);
    }
    return m?.name;
  }
}

class FanOutMetrics implements Metrics {
  constructor(private readonly targets: Metrics[]) {}
  increment(name: string, value = 1, labels?: Labels): void {
    for (const t of this.targets) t.increment(name, value, labels);
  }
  gauge(name: string, value: number, labels?: Labels): void {
    for (const t of this.targets) t.gauge(name, value, labels);
  }
  timing(name: string, ms: number, labels?: Labels): void {
    for (const t of this.targets) t.timing(name, ms, labels);
  }
  async close(): Promise<void> {
    await Promise.allSettled(this.targets.map((t) => t.close()));
  }
}

/**
 * `target` is statsd's host:port. Names are prefixed with `autoradio.<program>.<node>.` because
 * plain statsd does not parse the DogStatsD tag syntax that hot-shots would otherwise send.
 * With a `registry`, every call also feeds Prometheus (see metrics-server.ts for /metrics).
 */
export function createMetrics(
  target: string | undefined,
  program: string,
  nodeName: string,
  onError: (err: Error) => void,
  registry?: PrometheusRegistry,
): Metrics {
  const targets: Metrics[] = [];
  if (target) {
    const [host, portText] = splitHostPort(target, 8125);
    // dgram rejects such a port on every send; refuse it once, at startup, instead.
    if (!host || !Number.isInteger(portText) || portText < 1 || portText > 65535) {
      throw new Error(`--statsd must be host:port with a port from 1 to 65535, got "${target}"`);
    }
    const client = new StatsD({
      host,
      port: portText,
      prefix: `autoradio.${program}.${sanitizeMetricPart(nodeName)}.`,
      errorHandler: onError,
      cacheDns: true,
    });
    targets.push(new StatsdMetrics(client));
  }
  if (registry) targets.push(new PrometheusMetrics(registry));
  if (targets.length === 0) return new NullMetrics();
  return targets.length === 1 ? targets[0]! : new FanOutMetrics(targets);
}

export function sanitizeMetricPart(part: string): string {
  return part.replace(/[^A-Za-z0-9_-]/g, '_');
}

export function splitHostPort(target: string, defaultPort: number): [string, number] {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(target);
  if (bracketed) return [bracketed[1]!, bracketed[2] ? Number(bracketed[2]) : defaultPort];
  const idx = target.lastIndexOf(':');
  if (idx > 0 && target.indexOf(':') === idx) {
    return [target.slice(0, idx), Number(target.slice(idx + 1))];
  }
  return [target, defaultPort];
}
