import { Agent } from 'node:https';
import { rootCertificates } from 'node:tls';
import acme from 'acme-client';
import type { Etcd3, Lease } from 'etcd3';
import type { Logger } from '../../common/logger.js';
import { errorMessage } from '../../common/errors.js';
import { parseStoredAccount, type StoredAccount, type StoredCertificate } from '../../coordination/acme.js';
import { ACME_ACCOUNT_KEY, ACME_CERTIFICATE_KEY, acmeChallengeKey } from '../../coordination/keys.js';
import { checkCertificate, checkNamesZone } from './certificate.js';

/** What one order needs from the process: the CA, etcd, and a way to stop when deposed. */
export interface AcmeOrderContext {
  directory: string;
  email?: string;
  domain: string;
  nodeName: string;
  client: Etcd3;
  /** The orderer's election lease: challenge keys die with it if the orderer does. */
  lease: () => Lease | undefined;
  /** Resolves once the own view shows all `values` at the challenge name (our DNS answers them). */
  visible: (values: readonly string[]) => Promise<void>;
  /** Throws when this node no longer leads the ACME election: an order of a deposed node stops. */
  stillLeading: () => void;
  /** Extra time for the other nameservers' views after our own shows the values. */
  propagationMs: number;
  log: Logger;
}

/**
 * Trust for the CA's own HTTPS: the system roots plus --acme-ca-file. acme-client talks through
 * its shared axios instance, so this is set once per process.
 */
export function trustAcmeCa(caPem: string | undefined): void {
  if (caPem === undefined) return;
  acme.axios.defaults.httpsAgent = new Agent({ ca: [...rootCertificates, caPem] });
}

/**
 * The cluster's ACME account: read from etcd, or made once and stored with a create-if-absent
 * transaction, so every orderer, also one that takes over mid-order, uses the same account. An
 * account of another directory is replaced (the operator moved to another CA).
 */
export async function clusterAccount(ctx: Pick<AcmeOrderContext, 'client' | 'directory' | 'log'>): Promise<StoredAccount & { fresh: boolean }> {
  const read = await ctx.client.get(ACME_ACCOUNT_KEY).exec();
  const kv = read.kvs[0];
  if (kv) {
    try {
      const account = parseStoredAccount(kv.value.toString());
      if (account.directory === ctx.directory) return { ...account, fresh: false };
      ctx.log.warn({ stored: account.directory, directory: ctx.directory }, 'the stored ACME account belongs to another directory; making a new one');
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message }, 'the stored ACME account is unreadable; making a new one');
    }
  }
  const fresh: StoredAccount = { directory: ctx.directory, accountKey: (await acme.crypto.createPrivateEcdsaKey()).toString() };
  // Replace exactly what was read (or nothing): a concurrent writer's account wins.
  const res = await ctx.client
    .if(ACME_ACCOUNT_KEY, 'Mod', '==', kv ? kv.mod_revision : 0)
    .then(ctx.client.put(ACME_ACCOUNT_KEY).value(JSON.stringify(fresh)))
    .commit();
  if (res.succeeded) return { ...fresh, fresh: true };
  return { ...parseStoredAccount((await ctx.client.get(ACME_ACCOUNT_KEY).string()) ?? ''), fresh: false };
}

interface PendingChallenge {
  authz: acme.Authorization;
  challenge: { type: string; url: string; token: string; status: string };
  value: string;
}

/**
 * One order of the certificate for DOMAIN and *.DOMAIN by DNS-01, start to finish: the values go
 * into etcd under the election lease (every node's DNS answers them from its view), the CA
 * validates, the chain and its new key are checked like an operator's pair and stored. Returns
 * what was stored. The challenge keys are deleted at the end, whatever happened.
 */
export async function orderCertificate(ctx: AcmeOrderContext): Promise<StoredCertificate> {
  const account = await clusterAccount(ctx);
  // The certificate key as it stands now: the result is stored only if nobody stored one meanwhile.
  const before = (await ctx.client.get(ACME_CERTIFICATE_KEY).exec()).kvs[0]?.mod_revision ?? '0';
  const client = new acme.Client({ directoryUrl: ctx.directory, accountKey: account.accountKey });
  await register(client, account.fresh, ctx.email);
  ctx.stillLeading();
  const order = await client.createOrder({ identifiers: [ctx.domain, `*.${ctx.domain}`].map((value) => ({ type: 'dns', value })) });
  ctx.log.info({ order: order.url }, 'ACME order created');
  const pending = await pendingChallenges(client, await client.getAuthorizations(order));
  const keys = pending.map((p) => acmeChallengeKey(p.challenge.token));
  try {
    await publish(ctx, pending);
    for (const p of pending) {
      ctx.stillLeading();
      await client.completeChallenge(p.challenge as Parameters<typeof client.completeChallenge>[0]);
    }
    for (const p of pending) await client.waitForValidStatus(p.authz);
    ctx.stillLeading();
    const [key, csr] = await acme.crypto.createCsr(
      { commonName: ctx.domain, altNames: [ctx.domain, `*.${ctx.domain}`] },
      await acme.crypto.createPrivateEcdsaKey(),
    );
    const finalized = await client.finalizeOrder(order, csr);
    const chain = await client.getCertificate(finalized);
    checkCertificate(chain, key.toString(), 'the ACME order');
    // Stored, a chain that does not name the zone would look missing and be ordered again at once.
    checkNamesZone(chain, ctx.domain, 'the ACME order');
    ctx.stillLeading();
    const stored: StoredCertificate = { domain: ctx.domain, cert: chain, key: key.toString(), orderedBy: ctx.nodeName, storedAt: new Date().toISOString() };
    const put = await ctx.client
      .if(ACME_CERTIFICATE_KEY, 'Mod', '==', before)
      .then(ctx.client.put(ACME_CERTIFICATE_KEY).value(JSON.stringify(stored)))
      .commit();
    if (!put.succeeded) throw new Error('another orderer stored a certificate during this order; keeping theirs');
    return stored;
  } finally {
    await Promise.all(keys.map((k) => ctx.client.delete().key(k).exec().catch(() => undefined)));
  }
}

/**
 * Makes the account known to the client: a stored one is looked up (an update with the terms
 * again is refused by some CAs as an empty update), a new one is created, agreeing to the terms.
 * A stored account the CA does not know yet (its creator was deposed before registering it, or
 * a test CA restarted) is created; if that loses a race with its creator, it is looked up again.
 */
async function register(client: acme.Client, fresh: boolean, email: string | undefined): Promise<void> {
  if (!fresh && (await lookUp(client))) return;
  try {
    await client.createAccount({ termsOfServiceAgreed: true, ...(email ? { contact: [`mailto:${email}`] } : {}) });
  } catch (err) {
    if (await lookUp(client)) return;
    throw err;
  }
}

/** True when the CA knows the client's account key; false when it says it does not. */
async function lookUp(client: acme.Client): Promise<boolean> {
  try {
    await client.createAccount({ onlyReturnExisting: true });
    return true;
  } catch (err) {
    if (/unable to find existing account|no account exists|account does not exist|accountDoesNotExist/i.test(errorMessage(err))) return false;
    throw err;
  }
}

async function pendingChallenges(client: acme.Client, authzs: acme.Authorization[]): Promise<PendingChallenge[]> {
  const out: PendingChallenge[] = [];
  for (const authz of authzs) {
    // A CA may reuse an authorization it validated earlier: nothing to publish for it.
    if (authz.status === 'valid') continue;
    const challenge = authz.challenges.find((c) => c.type === 'dns-01');
    if (!challenge) throw new Error(`the CA offers no dns-01 challenge for ${authz.identifier.value}`);
    out.push({ authz, challenge, value: await client.getChallengeKeyAuthorization(challenge) });
  }
  return out;
}

/** Puts the values under the election lease and waits until our own DNS answers them. */
async function publish(ctx: AcmeOrderContext, pending: readonly PendingChallenge[]): Promise<void> {
  const lease = ctx.lease();
  if (!lease) throw new Error('no election lease for the challenge keys');
  for (const p of pending) await lease.put(acmeChallengeKey(p.challenge.token)).value(p.value);
  await ctx.visible(pending.map((p) => p.value));
  ctx.log.info({ values: pending.length }, 'DNS-01 values published');
  if (ctx.propagationMs > 0) await new Promise((r) => setTimeout(r, ctx.propagationMs));
}
