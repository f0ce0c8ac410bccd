import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage } from '../../common/errors.js';
import { monotonicNow } from '../../coordination/clock.js';
import { parseAdminStats, parseStatusJson, type IcecastStats } from './stats.js';
import type { FrontDoorListeners } from '../../coordination/front-door-listeners.js';

export interface IcecastEndpoint {
  /** e.g. http://127.0.0.1:8000 */
  baseUrl: string;
  adminUser: string;
  adminPassword: string;
}

/** The local address to reach an Icecast bound to `bind` (all interfaces when unset). */
export function localIcecastUrl(port: number, bind?: string): string {
  if (!bind || bind === '0.0.0.0') return `http://127.0.0.1:${port}`;
  if (bind === '::') return `http://[::1]:${port}`;
  return bind.includes(':') ? `http://[${bind}]:${port}` : `http://${bind}:${port}`;
}

function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/**
 * One status read: `/admin/stats` (stable XML, byte counters), falling back to the
 * unauthenticated `/status-json.xsl` when the admin page is refused (e.g. Icecast still runs
 * with an older password right after the secrets changed).
 */
export async function fetchIcecastStats(ep: IcecastEndpoint, timeoutMs = 1000): Promise<IcecastStats> {
  let adminProblem: string;
  try {
    const res = await fetch(`${ep.baseUrl}/admin/stats`, {
      headers: { authorization: basicAuth(ep.adminUser, ep.adminPassword) },
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = await res.text();
    if (res.ok) return parseAdminStats(body);
    adminProblem = `HTTP ${res.status}`;
  } catch (err) {
    // A refused or timed-out connection means Icecast is down: no point asking again.
    if (!(err instanceof SyntaxError) && !/invalid XML|icestats/.test(errorMessage(err))) throw err;
    adminProblem = errorMessage(err);
  }
  try {
    const res = await fetch(`${ep.baseUrl}/status-json.xsl`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return parseStatusJson(await res.text());
  } catch (err) {
    throw new Error(`admin stats: ${adminProblem}; status-json: ${errorMessage(err)}`);
  }
}

/** Whether Icecast answers with populated stats (safe to SIGHUP). */
export async function icecastAnswers(baseUrl: string, timeoutMs = 700): Promise<boolean> {
  try {
    const res = await fetch(`${baseUrl}/status-json.xsl`, { signal: AbortSignal.timeout(timeoutMs) });
    parseStatusJson(await res.text());
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether Icecast sends any HTTP answer within `timeoutMs`, whatever its status or body: the
 * test for a wedged Icecast, which answers nothing at all. A refused admin password or a
 * status page that does not parse (2.4.4's JSON breaks on some stream titles) is no stall.
 *
 * A fresh request every `everyMs`, content with the first answer: 2.4.4 listens with a backlog
 * of 5, which the abandoned polls of a silence fill, so one request's SYN is dropped and
 * retried after 1, 3 and 7 s, past the deadline even if Icecast revived at once (an Icecast
 * running 250 ms in every 2 s answered a single 5 s question not once, and was killed).
 */
export async function icecastResponds(baseUrl: string, timeoutMs: number, everyMs = 1000): Promise<boolean> {
  // A plain timer ends the question, not AbortSignal.timeout() joined with AbortSignal.any():
  // on Node 20 the joined timeout signal can be collected before it fires, and a question to a
  // wedged Icecast, which accepts and never answers, would then wait for ever (and with it
  // every later kill).
  const done = new AbortController();
  const deadline = setTimeout(() => done.abort(), timeoutMs);
  const signal = done.signal;
  const ask = async (afterMs: number): Promise<true> => {
    if (afterMs > 0) await sleep(afterMs, undefined, { signal });
    const res = await fetch(`${baseUrl}/status-json.xsl`, { signal });
    await res.body?.cancel();
    return true;
  };
  const asks: Promise<true>[] = [];
  for (let at = 0; at < timeoutMs; at += everyMs) asks.push(ask(at));
  try {
    return await Promise.any(asks);
  } catch {
    return false;
  } finally {
    clearTimeout(deadline);
    done.abort();
  }
}

/** Asks Icecast to drop a mount's source (its client reconnects, through the proxy, to the master). */
export async function killSource(ep: IcecastEndpoint, mount: string, timeoutMs = 1000): Promise<void> {
  const res = await fetch(`${ep.baseUrl}/admin/killsource?mount=${encodeURIComponent(mount)}`, {
    headers: { authorization: basicAuth(ep.adminUser, ep.adminPassword) },
    signal: AbortSignal.timeout(timeoutMs),
  });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`killsource ${mount}: HTTP ${res.status}`);
}

export interface PollResult {
  at: number;
  stats: IcecastStats | undefined;
  error?: string;
  /** The local front door's listener counts, when it was asked and answered. */
  frontDoor?: FrontDoorListeners;
}

/**
 * Polls the local Icecast every `intervalMs` (never overlapping) and hands each result,
 * success or failure, to `onResult`.
 */
export class StatsPoller {
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;

  constructor(
    private readonly endpoint: () => IcecastEndpoint,
    private readonly intervalMs: number,
    private readonly onResult: (r: PollResult) => void | Promise<void>,
    /** Asked with every poll, alongside Icecast. */
    private readonly frontDoor?: (timeoutMs: number) => Promise<FrontDoorListeners | undefined>,
  ) {}

  start(): void {
    this.stopped = false;
    void this.tick();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    // The pause is measured on the monotonic clock: a wall clock stepped back an hour during a
    // poll (slow while Icecast is silent) left the poller asleep for that hour, blind to a stall.
    const startedAt = monotonicNow();
    let result: PollResult;
    const timeoutMs = Math.min(1500, this.intervalMs);
    const frontDoor = this.frontDoor?.(timeoutMs);
    try {
      result = { at: Date.now(), stats: await fetchIcecastStats(this.endpoint(), timeoutMs) };
    } catch (err) {
      result = { at: Date.now(), stats: undefined, error: errorMessage(err) };
    }
    const counts = await frontDoor;
    if (counts) result.frontDoor = counts;
    try {
      await this.onResult(result);
    } catch {
      // The consumer logs its own failures; the poll goes on.
    }
    if (this.stopped) return;
    const wait = Math.max(50, this.intervalMs - (monotonicNow() - startedAt));
    this.timer = setTimeout(() => void this.tick(), wait);
  }
}
