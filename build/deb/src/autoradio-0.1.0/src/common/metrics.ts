import { StatsD } from 'hot-shots';

/** The counters and gauges every program sends; a no-op when statsd is not configured. */
export interface Metrics {
  increment(name: string, value?: number): void;
  gauge(name: string, value: number): void;
  timing(name: string, ms: number): void;
  close(): Promise<void>;
}

class NullMetrics implements Metrics {
  increment(): void {}
  gauge(): void {}
  timing(): void {}
  async close(): Promise<void> {}
}

class StatsdMetrics implements Metrics {
  constructor(private readonly client: StatsD) {}
  increment(name: string, value = 1): void {
    this.client.increment(name, value);
  }
  gauge(name: string, value: number): void {
    this.client.gauge(name, value);
  }
  timing(name: string, ms: number): void {
    this.client.timing(name, ms);
  }
  close(): Promise<void> {
    return new Promise((resolve) => this.client.close(() => resolve()));
  }
}

/**
 * `target` is host:port. Names are prefixed with `autoradio.<program>.<node>.` because plain
 * statsd does not parse the DogStatsD tag syntax that hot-shots would otherwise send.
 */
export function createMetrics(
  target: string | undefined,
  program: string,
  nodeName: string,
  onError: (err: Error) => void,
): Metrics {
  if (!target) return new NullMetrics();
  const [host, portText] = splitHostPort(target, 8125);
  const client = new StatsD({
    host,
    port: portText,
    prefix: `autoradio.${program}.${sanitizeMetricPart(nodeName)}.`,
    errorHandler: onError,
    cacheDns: true,
  });
  return new StatsdMetrics(client);
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
