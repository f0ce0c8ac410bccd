import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import { AutoradioError, errorMessage } from '../../common/errors.js';
import { checkCertificate, type Certificate } from './certificate.js';

export interface CertificateFilesOptions {
  certFile: string;
  keyFile: string;
  log: Logger;
  metrics: Metrics;
  /** Called with each new good certificate, the first one included. */
  onCertificate: (cert: Certificate) => void;
  /** How often the files' metadata is compared, in case a watch event is missed. 5 s. */
  pollMs?: number;
  /** Quiet time after a watch event before the files are read (renames come in bursts). 200 ms. */
  settleMs?: number;
}

/**
 * The operator's `--tls-cert`/`--tls-key` files, read again whenever they change (a watch on
 * their directories, which also sees a file replaced by rename as certbot and most deploy
 * tools do, and a periodic stat that catches what the watch misses, e.g. on network file
 * systems). A pair is read only when the files' metadata differs from the last pair tried,
 * so a bad pair is reported once, not every poll. A pair written in two steps (certificate,
 * then key) is refused in between and loaded when the second file lands.
 */
export class CertificateFiles {
  private readonly watchers: FSWatcher[] = [];
  private poller: NodeJS.Timeout | undefined;
  private settle: NodeJS.Timeout | undefined;
  /** The files' metadata when they were last read, good or bad. */
  private lastTried = '';
  private reading: Promise<void> | undefined;
  private current: Certificate | undefined;
  private stopped = false;

  constructor(private readonly opts: CertificateFilesOptions) {}

  /** The certificate in use, if any was ever good. */
  get certificate(): Certificate | undefined {
    return this.current;
  }

  /** Reads the files once (a bad pair is logged), then follows them. */
  async start(): Promise<Certificate | undefined> {
    await this.check();
    if (this.stopped) return this.current;
    for (const dir of new Set([dirname(this.opts.certFile), dirname(this.opts.keyFile)])) {
      try {
        const w = watch(dir, () => this.changed());
        w.on('error', (err) => this.opts.log.warn({ err: errorMessage(err), dir }, 'certificate directory watch failed; polling only'));
        this.watchers.push(w);
      } catch (err) {
        this.opts.log.warn({ err: errorMessage(err), dir }, 'cannot watch the certificate directory; polling only');
      }
    }
    this.poller = setInterval(() => void this.check(), this.opts.pollMs ?? 5000);
    this.poller.unref();
    return this.current;
  }

  stop(): void {
    this.stopped = true;
    for (const w of this.watchers) w.close();
    if (this.poller) clearInterval(this.poller);
    if (this.settle) clearTimeout(this.settle);
  }

  /** Reads the files if their metadata changed; one read at a time. */
  check(): Promise<void> {
    this.reading ??= this.readIfChanged().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  private changed(): void {
    if (this.settle) clearTimeout(this.settle);
    this.settle = setTimeout(() => void this.check(), this.opts.settleMs ?? 200);
  }

  private async readIfChanged(): Promise<void> {
    const { certFile, keyFile, log, metrics } = this.opts;
    let signature: string;
    try {
      const [c, k] = await Promise.all([stat(certFile), stat(keyFile)]);
      signature = [c.ino, c.size, c.mtimeMs, k.ino, k.size, k.mtimeMs].join(':');
    } catch (err) {
      if (this.lastTried !== 'missing') log.error({ err: errorMessage(err), certFile, keyFile }, 'certificate files unreadable; HTTPS keeps the last good certificate, if any');
      this.lastTried = 'missing';
      return;
    }
    if (signature === this.lastTried || this.stopped) return;
    this.lastTried = signature;
    try {
      const [certPem, keyPem] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
      const cert = checkCertificate(certPem, keyPem, `${certFile} and ${keyFile}`);
      if (this.stopped) return;
      this.opts.onCertificate(cert);
      this.current = cert;
      metrics.increment('tls.certificate_loaded');
      log.info({ names: cert.names, notAfter: cert.notAfter.toISOString(), certFile }, 'TLS certificate loaded');
    } catch (err) {
      metrics.increment('tls.certificate_refused');
      const code = err instanceof AutoradioError ? err.code : undefined;
      log.error({ err: errorMessage(err), code, certFile, keyFile }, 'TLS certificate refused');
    }
  }
}
