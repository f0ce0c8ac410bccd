import { stat } from 'node:fs/promises';
import { mustRun, run } from './debian-root.js';
import type { BootedRoot } from './booted-root.js';
import type { Managed } from '../support/processes.js';

/**
 * Source and listeners of the booted container's cluster, run from this machine's ffmpeg and
 * curl inside the container's network namespace, and what a listener heard.
 */

/** What a listener's file holds: codec and bit rate (ffprobe), loudness (ffmpeg volumedetect). */
export interface Heard {
  bytes: number;
  codec?: string;
  bitRate?: number;
  meanVolumeDb?: number;
}

export async function analyse(file: string): Promise<Heard> {
  const bytes = (await stat(file).catch(() => undefined))?.size ?? 0;
  if (bytes === 0) return { bytes };
  const probe = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,bit_rate', '-of', 'json', file]);
  const stream = probe.code === 0 ? (JSON.parse(probe.stdout) as { streams: { codec_name?: string; bit_rate?: string }[] }).streams[0] : undefined;
  const volume = await mustRun('ffmpeg', ['-hide_banner', '-nostats', '-i', file, '-af', 'volumedetect', '-f', 'null', '-']);
  const mean = /mean_volume: (-?[\d.]+|-inf) dB/.exec(volume.stderr)?.[1];
  return {
    bytes,
    codec: stream?.codec_name,
    bitRate: stream?.bit_rate ? Number(stream.bit_rate) : undefined,
    meanVolumeDb: mean === undefined ? undefined : mean === '-inf' ? -Infinity : Number(mean),
  };
}

/**
 * A listener as a player is one: a request for `path` on port 80, following the redirect to the
 * node's /_stream proxy, kept for `seconds` (curl stops at its deadline with what it got).
 */
export async function listenFor(box: BootedRoot, path: string, seconds: number, file: string): Promise<{ answer: string; heard: Heard }> {
  const r = await box.netRun('curl', ['-s', '-L', '-m', String(seconds), '-o', file, '-w', '%{http_code} %{url_effective} %{content_type}', `http://127.0.0.1${path}`], (seconds + 30) * 1000);
  // 28: the deadline passed while the stream still ran, which is what a live stream does.
  const answer = `curl ${r.code}: ${r.stdout}`;
  return { answer, heard: await analyse(file) };
}

/** The source's 440 Hz tone is about -21 dB; liquidsoap's stand-in silence is -91 dB. */
export const TONE_MIN_DB = -40;

/**
 * A source client that reconnects as real ones do: ffmpeg sends a 440 Hz tone as MP3 to
 * `url` and is started again a second after any exit (a restarted front door or Icecast ends
 * its connection).
 */
export class ReconnectingSource {
  private current: Managed | undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  starts = 0;

  constructor(
    private readonly box: BootedRoot,
    private readonly url: string,
  ) {}

  start(): void {
    if (this.stopped) return;
    this.timer = undefined;
    this.starts++;
    const p = this.box.netStart('ffmpeg', [
      '-hide_banner', '-loglevel', 'error', '-nostdin', '-re',
      '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
      '-c:a', 'libmp3lame', '-b:a', '128k', '-content_type', 'audio/mpeg', '-f', 'mp3', this.url,
    ]);
    this.current = p;
    void p.exited.then(() => {
      if (!this.stopped) this.timer = setTimeout(() => this.start(), 1000);
    });
  }

  lastOutput(): string {
    return this.current?.output.slice(-10).join('\n') ?? '(not started)';
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.current?.stop('SIGKILL');
  }
}
