import { runToEnd } from './common.js';

export interface WrkResult {
  requests: number;
  seconds: number;
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Answers that were not 2xx/3xx (a 404 or 503 means the benchmark measured the wrong thing). */
  badStatus: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
}

export interface WrkOptions {
  url: string;
  seconds: number;
  connections: number;
  threads?: number;
  headers?: string[];
  /** A Lua script (e.g. one that picks a random path per request). */
  script?: string;
}

function toMs(value: string, unit: string): number {
  const v = Number(value);
  if (unit === 'us') return v / 1000;
  if (unit === 'ms') return v;
  if (unit === 's') return v * 1000;
  if (unit === 'm') return v * 60_000;
  return NaN;
}

export function parseWrk(text: string): WrkResult {
  const lat = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(text);
    return m ? toMs(m[1]!, m[2]!) : NaN;
  };
  const max = /Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m)/.exec(text);
  const total = /(\d+) requests in ([\d.]+)(ms|s|m)/.exec(text);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  return {
    requests: total ? Number(total[1]) : NaN,
    seconds: total ? toMs(total[2]!, total[3]!) / 1000 : NaN,
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? NaN),
    p50Ms: lat('50'),
    p90Ms: lat('90'),
    p99Ms: lat('99'),
    maxMs: max ? toMs(max[1]!, max[2]!) : NaN,
    badStatus: Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0),
    socketErrors: sock
      ? { connect: Number(sock[1]), read: Number(sock[2]), write: Number(sock[3]), timeout: Number(sock[4]) }
      : { connect: 0, read: 0, write: 0, timeout: 0 },
  };
}

export async function wrk(o: WrkOptions): Promise<WrkResult> {
  const args = ['-t', String(o.threads ?? 1), '-c', String(o.connections), '-d', `${o.seconds}s`, '--latency'];
  for (const h of o.headers ?? []) args.push('-H', h);
  if (o.script) args.push('-s', o.script);
  args.push(o.url);
  const out = await runToEnd('wrk', args);
  const r = parseWrk(out);
  if (!Number.isFinite(r.rps)) throw new Error(`cannot parse wrk output:\n${out}`);
  return r;
}
