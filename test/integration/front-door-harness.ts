import { createServer as createHttpServer, type IncomingMessage, type ServerResponse, type Server as HttpServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm, chmod, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/common/logger.js';
import { createFrontDoor, type FrontDoor, type FrontDoorOptions } from '../../src/redirectord/http/front-door.js';
import type { HostPort } from '../../src/coordination/host-port.js';
import { freePort } from '../support/ports.js';
import { icecastSources } from '../support/icecast.js';
import { startProcess, type Managed } from '../support/processes.js';

/** Shared by the front-door, source-proxy and stream-proxy integration tests. */
export { RecordingMetrics } from '../support/fixtures.js';
import { RecordingMetrics } from '../support/fixtures.js';


export interface Door {
  port: number;
  door: FrontDoor;
  metrics: RecordingMetrics;
  httpServer: HttpServer;
  /** Mutable: what `master()` answers. */
  master: { current: HostPort | undefined };
  close(): Promise<void>;
}

/** An app that answers `app METHOD URL body=<body>` so tests see what reached it. */
export function echoApp(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = `app ${req.method} ${req.url} body=${Buffer.concat(chunks).toString()} port=${req.socket.remotePort}`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}

export async function startDoor(o: {
  master?: HostPort;
  localIcecast?: HostPort;
  limits?: FrontDoorOptions['limits'];
  continuity?: FrontDoorOptions['continuity'];
  app?: (req: IncomingMessage, res: ServerResponse) => void;
  /** The node's listener limit, as the front door reads it from the cluster view. */
  maxListeners?: number;
}): Promise<Door> {
  const httpServer = createHttpServer(o.app ?? echoApp);
  const metrics = new RecordingMetrics();
  const master = { current: o.master };
  const door = createFrontDoor({
    httpServer,
    master: () => master.current,
    // Relays (`/_relay/...`) follow the same stand-in master.
    relayUpstream: () => master.current,
    localIcecast: o.localIcecast ?? { host: '127.0.0.1', port: 9 },
    log: createLogger('front-door-test', process.env.TEST_LOG_LEVEL ?? 'silent'),
    metrics,
    limits: o.limits,
    continuity: o.continuity,
    maxListeners: () => o.maxListeners,
  });
  const port = await freePort();
  await new Promise<void>((resolve) => door.listen(port, '127.0.0.1', resolve));
  return {
    port,
    door,
    metrics,
    httpServer,
    master,
    async close() {
      door.destroyConnections();
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => door.close(() => resolve()));
    },
  };
}

/** A raw TCP client that keeps everything it receives. */
export class RawClient {
  readonly socket: Socket;
  received: Buffer = Buffer.alloc(0);
  ended = false;
  closed = false;
  constructor(port: number) {
    this.socket = connect({ host: '127.0.0.1', port });
    this.socket.on('data', (c: Buffer) => (this.received = Buffer.concat([this.received, c])));
    this.socket.on('end', () => (this.ended = true));
    this.socket.on('close', () => (this.closed = true));
    this.socket.on('error', () => {});
  }
  text(): string {
    return this.received.toString('latin1');
  }
  send(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }
  destroy(): void {
    this.socket.destroy();
  }
}

const execFileP = promisify(execFile);

/** `count` MPEG-1 layer III frames of silence (128 kbit/s, 44.1 kHz: 417 bytes each), for stand-in Icecasts. */
export function mp3Frames(count: number): Buffer {
  const frame = Buffer.alloc(417);
  Buffer.from([0xff, 0xfb, 0x90, 0x64]).copy(frame);
  return Buffer.concat(Array.from({ length: count }, () => frame));
}

/** An MP3 tone file (128 kbit/s) made once per test file. */
export async function makeMp3(seconds: number): Promise<{ dir: string; file: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'autoradio-fd-'));
  await chmod(dir, 0o755);
  const file = join(dir, 'tone.mp3');
  await execFileP('ffmpeg', [
    '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', `sine=frequency=440:duration=${seconds}`,
    '-c:a', 'libmp3lame', '-b:a', '128k', '-f', 'mp3', file,
  ]);
  await chmod(file, 0o644);
  return { dir, file, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * ezstream (libshout, with its TLS probe first) streaming an MP3 file once through the front
 * door on `port`. Its config holds the password, so it is written beside the file, mode 0600.
 */
export async function startEzstream(o: { port: number; password: string; mount: string; mp3: { dir: string; file: string } }): Promise<Managed> {
  const config = join(o.mp3.dir, 'ezstream.xml');
  await writeFile(
    config,
    `<?xml version="1.0" encoding="UTF-8"?>
<ezstream>
  <servers><server><protocol>HTTP</protocol><hostname>127.0.0.1</hostname><port>${o.port}</port>
    <user>source</user><password>${o.password}</password><tls>May</tls></server></servers>
  <streams><stream><mountpoint>${o.mount}</mountpoint><format>MP3</format><public>No</public></stream></streams>
  <intakes><intake><type>file</type><filename>${o.mp3.file}</filename><stream_once>Yes</stream_once></intake></intakes>
</ezstream>
`,
    { mode: 0o600 },
  );
  await chmod(config, 0o600);
  return startProcess('ezstream', ['-c', config]);
}

/** Icecast's mounts from its public status page (mount path -> stats). */
export const icecastMounts = icecastSources;

/** Icecast's /admin/stats XML (admin credentials), for user agents and per-mount counters. */
export async function icecastAdminStats(url: string, adminPassword: string): Promise<string> {
  const res = await fetch(`${url}/admin/stats`, {
    headers: { authorization: `Basic ${Buffer.from(`admin:${adminPassword}`).toString('base64')}` },
    signal: AbortSignal.timeout(2000),
  });
  return res.text();
}

/** Strict ICY deframer: audio, the metadata texts, and whether every block was well-formed. */
export function deframeIcy(body: Buffer, metaint: number): { audioBytes: number; titles: string[]; problems: string[] } {
  const titles: string[] = [];
  const problems: string[] = [];
  let audioBytes = 0;
  let i = 0;
  while (i + metaint < body.length) {
    audioBytes += metaint;
    i += metaint;
    const n = body[i]! * 16;
    if (i + 1 + n > body.length) break;
    const text = body.subarray(i + 1, i + 1 + n).toString('latin1').replace(/\0+$/, '');
    if (n > 0) {
      if (!/^StreamTitle='[^']*';/.test(text) && !"StreamTitle='".startsWith(text.slice(0, 13))) {
        problems.push(`block at ${i}: ${JSON.stringify(text.slice(0, 40))}`);
      }
      titles.push(text);
    }
    i += 1 + n;
  }
  audioBytes += Math.min(metaint, body.length - i);
  return { audioBytes, titles, problems };
}

export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** Writes `audio` in a loop at about `bytesPerSecond` until stopped (Icecast applies titles as audio flows). */
export function feed(client: RawClient, audio: Buffer, bytesPerSecond = 16_000): { stop(): void } {
  const step = Math.ceil(bytesPerSecond / 8);
  let at = 0;
  const timer = setInterval(() => {
    if (client.closed) return clearInterval(timer);
    if (at + step > audio.length) at = 0;
    client.send(audio.subarray(at, at + step));
    at += step;
  }, 125);
  return { stop: () => clearInterval(timer) };
}
