import { readFile } from 'node:fs/promises';
import type { Etcd3 } from 'etcd3';
import type { Logger } from '../common/logger.js';
import type { Metrics } from '../common/metrics.js';
import type { ClusterView } from '../coordination/cluster-view.js';
import { Elector } from '../coordination/elector.js';
import { AcmeOrderer } from './tls/acme-orderer.js';
import { trustAcmeCa } from './tls/acme-order.js';
import type { RedirectordOptions } from './options.js';

/** The ACME election's lease TTL: an orderer that died is replaced within about this long. */
const ACME_LEASE_TTL_SECONDS = 5;

export interface RunningAcme {
  stop(): Promise<void>;
}

/**
 * With --acme-directory: this node campaigns to be the cluster's ACME orderer (acme-orderer.ts)
 * on an election lease of its own. A missing --acme-ca-file is an error at start, not at the
 * first order weeks later.
 */
export async function startAcme(
  opts: Pick<RedirectordOptions, 'acmeDirectory' | 'acmeEmail' | 'acmeCaFile' | 'domain' | 'name'>,
  parts: { client: Etcd3; view: ClusterView; log: Logger; metrics: Metrics },
): Promise<RunningAcme | undefined> {
  if (opts.acmeDirectory === undefined) return undefined;
  trustAcmeCa(opts.acmeCaFile === undefined ? undefined : await readFile(opts.acmeCaFile, 'utf8'));
  const elector = new Elector(parts.client, { ttlSeconds: ACME_LEASE_TTL_SECONDS, log: parts.log });
  const orderer = new AcmeOrderer({
    directory: opts.acmeDirectory,
    ...(opts.acmeEmail ? { email: opts.acmeEmail } : {}),
    domain: opts.domain,
    nodeName: opts.name,
    client: parts.client,
    elector,
    view: parts.view,
    log: parts.log,
    metrics: parts.metrics,
  });
  elector.start();
  orderer.start();
  parts.log.info({ directory: opts.acmeDirectory }, 'ACME: campaigning to order the cluster certificate');
  return {
    async stop() {
      await orderer.stop();
      await elector.stop();
    },
  };
}
