import { readFileSync } from 'node:fs';
import { Etcd3, isRecoverableError, type IOptions } from 'etcd3';
import {
  circuitBreaker,
  ConsecutiveBreaker,
  ExponentialBackoff,
  handleWhen,
  retry,
  type IBackoff,
} from 'cockatiel';
import type { EtcdFlags } from '../common/flags.js';

export type { Etcd3 } from 'etcd3';

/**
 * Per-call deadline. Without one, every call hangs forever on a blackholed etcd (TCP up, no
 * answers); gRPC keepalives do not help. Streams (watch, lease keepalive) get none.
 */
export const CALL_DEADLINE_MS = 1500;

/**
 * gRPC refuses any message over 4 MB by default (RESOURCE_EXHAUSTED), and a watch that fails
 * that way on its catch-up batch silently skips the batch. Range reads are paged below this
 * bound (see prefix-read.ts); a single watch response can still carry one whole transaction.
 */
export const ETCD_MAX_RECEIVE_BYTES = 128 * 1024 * 1024;

export function etcdOptions(flags: EtcdFlags): IOptions {
  const options: IOptions = {
    hosts: flags.etcdUrls,
    grpcOptions: { 'grpc.max_receive_message_length': ETCD_MAX_RECEIVE_BYTES },
    dialTimeout: 2000,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + CALL_DEADLINE_MS }),
    faultHandling: {
      // Open for one second only: after an outage the cluster should notice etcd is back fast.
      host: () =>
        circuitBreaker(handleWhen(isRecoverableError), {
          halfOpenAfter: 1000,
          breaker: new ConsecutiveBreaker(3),
        }),
      global: retry(handleWhen(isRecoverableError), {
        maxAttempts: 2,
        backoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 500 }),
      }),
      // etcd3's type says IBackoff, but at run time it calls `.next()` on this value first,
      // which is exactly cockatiel 3's backoff factory.
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2000 }) as unknown as IBackoff<unknown>,
    },
  };
  if (flags.etcdCa || flags.etcdCert || flags.etcdKey) {
    if (!flags.etcdCa) throw new Error('--etcd-ca is required when etcd TLS is used');
    if (Boolean(flags.etcdCert) !== Boolean(flags.etcdKey)) {
      throw new Error('--etcd-cert and --etcd-key must be given together');
    }
    options.credentials = {
      rootCertificate: readFileSync(flags.etcdCa),
      ...(flags.etcdCert && flags.etcdKey
        ? { certChain: readFileSync(flags.etcdCert), privateKey: readFileSync(flags.etcdKey) }
        : {}),
    };
  }
  return options;
}

export function connectEtcd(flags: EtcdFlags): Etcd3 {
  return new Etcd3(etcdOptions(flags));
}
