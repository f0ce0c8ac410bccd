import type { Logger } from '../common/logger.js';
import type { Metrics } from '../common/metrics.js';
import { errorMessage } from '../common/errors.js';
import type { ClusterState } from '../coordination/cluster-state.js';
import type { FrontDoor } from './http/front-door.js';
import { TlsDoor } from './http/tls-door.js';
import { CertificateFiles } from './tls/certificate-files.js';
import type { Certificate } from './tls/certificate.js';
import { ClusterCertificate } from './tls/cluster-certificate.js';
import { preferredCertificate } from './tls/certificate-choice.js';

/** How often the served certificate is chosen again without any change of the files or the view. */
const EXPIRY_RECHECK_MS = 60_000;

export interface HttpsOptions {
  port: number;
  bind?: string;
  certFile?: string;
  keyFile?: string;
  /** The cluster's ACME certificate, followed in the watched view (with --acme-directory). */
  cluster?: {
    domain: string;
    view: { current(): ClusterState; onChange(listener: (state: ClusterState) => void): () => void };
  };
  frontDoor: Pick<FrontDoor, 'adopt'>;
  log: Logger;
  metrics: Metrics;
}

/** The HTTPS port while it runs; `close` stops listening and following the certificates. */
export interface Https {
  close(): void;
  certificate(): Certificate | undefined;
}

/**
 * Starts HTTPS when a port and a certificate source are configured. The port opens with the
 * first good certificate (now, or later when the operator's files become good or the cluster's
 * certificate lands in etcd) and every later change of the preferred certificate
 * (certificate-choice.ts) replaces the one in use for new handshakes; connections already made
 * keep theirs. Without a port or any source HTTPS stays off, and says so.
 */
export async function startHttps(o: HttpsOptions): Promise<Https | undefined> {
  const { log, metrics } = o;
  if (o.port === 0) {
    log.info('HTTPS off (--https-port 0)');
    return undefined;
  }
  const operatorFiles = o.certFile !== undefined && o.keyFile !== undefined;
  if (!operatorFiles && !o.cluster) {
    log.warn({ httpsPort: o.port }, 'HTTPS off: no certificate (--tls-cert and --tls-key, or --acme-directory)');
    return undefined;
  }
  let door: TlsDoor | undefined;
  let serving: Certificate | undefined;
  const sources: { operator?: Certificate; cluster?: Certificate } = {};
  const serve = () => {
    const cert = preferredCertificate(sources.operator, sources.cluster);
    if (!cert || cert === serving) return;
    serving = cert;
    if (door) return void door.setSecureContext({ cert: cert.cert, key: cert.key });
    door = new TlsDoor({ frontDoor: o.frontDoor, credentials: { cert: cert.cert, key: cert.key }, log, metrics });
    const listening = door;
    listening.once('listening', () => log.info({ httpsPort: o.port }, 'HTTPS listening'));
    // A port that cannot be bound is reported by the TlsDoor's error handler; HTTP goes on.
    if (o.bind) listening.listen(o.port, o.bind);
    else listening.listen(o.port);
  };
  const files = operatorFiles
    ? new CertificateFiles({ certFile: o.certFile!, keyFile: o.keyFile!, log, metrics, onCertificate: (cert) => ((sources.operator = cert), serve()) })
    : undefined;
  if (files) await startFiles(files, o);
  let unfollow: (() => void) | undefined;
  if (o.cluster) {
    const cluster = new ClusterCertificate({ domain: o.cluster.domain, log, metrics, onCertificate: (cert) => ((sources.cluster = cert), serve()) });
    unfollow = o.cluster.view.onChange((state) => cluster.update(state));
    cluster.update(o.cluster.view.current());
    if (!serving) log.warn({ httpsPort: o.port }, 'HTTPS waits for the cluster certificate in etcd (ACME)');
  }
  // The choice changes by itself when the operator's pair expires: look again now and then.
  const recheck = setInterval(serve, EXPIRY_RECHECK_MS);
  recheck.unref();
  return {
    close() {
      clearInterval(recheck);
      unfollow?.();
      files?.stop();
      door?.close();
    },
    certificate: () => serving,
  };
}

async function startFiles(files: CertificateFiles, o: HttpsOptions): Promise<void> {
  try {
    const first = await files.start();
    if (!first) o.log.warn({ httpsPort: o.port }, 'HTTPS waits for a good certificate in the --tls-cert and --tls-key files');
  } catch (err) {
    o.log.error({ err: errorMessage(err) }, 'HTTPS certificate files cannot be followed');
  }
}
