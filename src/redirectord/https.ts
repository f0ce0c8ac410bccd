import type { Logger } from '../common/logger.js';
import type { Metrics } from '../common/metrics.js';
import { errorMessage } from '../common/errors.js';
import type { FrontDoor } from './http/front-door.js';
import { TlsDoor } from './http/tls-door.js';
import { CertificateFiles } from './tls/certificate-files.js';
import type { Certificate } from './tls/certificate.js';

export interface HttpsOptions {
  port: number;
  bind?: string;
  certFile?: string;
  keyFile?: string;
  frontDoor: Pick<FrontDoor, 'adopt'>;
  log: Logger;
  metrics: Metrics;
}

/** The HTTPS port while it runs; `close` stops listening and following the files. */
export interface Https {
  close(): void;
  certificate(): Certificate | undefined;
}

/**
 * Starts HTTPS when a port and a certificate are configured. The port opens with the first
 * good certificate (now, or later when the operator's files become good) and every later
 * good certificate replaces the one in use for new handshakes; connections already made keep
 * theirs. Without a port or files HTTPS stays off, and says so.
 */
export async function startHttps(o: HttpsOptions): Promise<Https | undefined> {
  const { log, metrics } = o;
  if (o.port === 0) {
    log.info('HTTPS off (--https-port 0)');
    return undefined;
  }
  if (o.certFile === undefined || o.keyFile === undefined) {
    log.warn({ httpsPort: o.port }, 'HTTPS off: no certificate (--tls-cert and --tls-key)');
    return undefined;
  }
  let door: TlsDoor | undefined;
  const files = new CertificateFiles({
    certFile: o.certFile,
    keyFile: o.keyFile,
    log,
    metrics,
    onCertificate: (cert) => {
      if (door) {
        door.setSecureContext({ cert: cert.cert, key: cert.key });
        return;
      }
      door = new TlsDoor({ frontDoor: o.frontDoor, credentials: { cert: cert.cert, key: cert.key }, log, metrics });
      const listening = door;
      listening.once('listening', () => log.info({ httpsPort: o.port }, 'HTTPS listening'));
      // A port that cannot be bound is reported by the TlsDoor's error handler; HTTP goes on.
      if (o.bind) listening.listen(o.port, o.bind);
      else listening.listen(o.port);
    },
  });
  try {
    const first = await files.start();
    if (!first) log.warn({ httpsPort: o.port }, 'HTTPS waits for a good certificate in the --tls-cert and --tls-key files');
  } catch (err) {
    log.error({ err: errorMessage(err) }, 'HTTPS certificate files cannot be followed');
  }
  return {
    close() {
      files.stop();
      door?.close();
    },
    certificate: () => files.certificate,
  };
}
