import { createServer } from 'node:http';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Debian's Chromium; playwright-core brings no browser of its own. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Headless as root in a container: no sandbox, no GPU, nothing that phones home (the tests
 * reach only loopback), and audio may start without a user gesture.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required',
];

export interface TestBrowser {
  context: BrowserContext;
  /** The private profile dir; also a place for screenshots (removed with it). */
  profile: string;
}

/** Starts Chromium with a throw-away profile; closed and removed when the test ends. */
export async function launchChromium(t: TestContext, extraArgs: readonly string[] = []): Promise<TestBrowser> {
  const profile = await mkdtemp(join(tmpdir(), 'autoradio-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_ARGS, ...extraArgs],
      timeout: 30_000,
    });
  } catch (err) {
    await rm(profile, { recursive: true, force: true });
    throw err;
  }
  t.after(async () => {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  });
  return { context, profile };
}

/**
 * Serves one HTML page from its own port: another origin than the daemon under test, so the
 * browser applies CORS. Closed when the test ends; resolves the port.
 */
export async function serveOtherOrigin(t: TestContext, page: string): Promise<number> {
  const origin = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(page);
  });
  origin.listen(0, '127.0.0.1');
  await once(origin, 'listening');
  t.after(async () => {
    origin.closeAllConnections();
    await new Promise<void>((r) => origin.close(() => r()));
  });
  return (origin.address() as { port: number }).port;
}

export interface AudioState {
  t: number;
  ready: number;
  src: string;
}

/** Where an <audio> element of the page is; throws on a media error, with its message. */
export async function audioState(page: Page, id: string): Promise<AudioState> {
  const s = await page.evaluate((elementId) => {
    const a = document.getElementById(elementId) as HTMLAudioElement;
    return { t: a.currentTime, ready: a.readyState, err: a.error?.code ?? 0, msg: a.error?.message ?? '', src: a.currentSrc };
  }, id);
  if (s.err) throw new Error(`media error ${s.err} ${s.msg}`);
  return { t: s.t, ready: s.ready, src: s.src };
}
