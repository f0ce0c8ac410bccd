import { randomBytes } from 'node:crypto';
import type { Etcd3 } from 'etcd3';
import { Ajv } from 'ajv';
import { ICECAST_SECRETS_KEY } from './keys.js';

/** Passwords shared by every Icecast of the cluster: relays authenticate to the master with them. */
export interface IcecastSecrets {
  adminPassword: string;
  relayPassword: string;
}

const validate = new Ajv().compile<IcecastSecrets>({
  type: 'object',
  required: ['adminPassword', 'relayPassword'],
  properties: {
    adminPassword: { type: 'string', pattern: '^[A-Za-z0-9_-]{16,128}$' },
    relayPassword: { type: 'string', pattern: '^[A-Za-z0-9_-]{16,128}$' },
  },
});

export function generatePassword(bytes = 18): string {
  return randomBytes(bytes).toString('base64url');
}

/**
 * Returns the cluster's Icecast secrets, creating them on first use. The create is a
 * transaction on the key's absence, so concurrent first starts agree on one set.
 */
export async function ensureIcecastSecrets(client: Etcd3): Promise<IcecastSecrets> {
  const fresh: IcecastSecrets = { adminPassword: generatePassword(), relayPassword: generatePassword() };
  const res = await client
    .if(ICECAST_SECRETS_KEY, 'Create', '==', 0)
    .then(client.put(ICECAST_SECRETS_KEY).value(JSON.stringify(fresh)))
    .else(client.get(ICECAST_SECRETS_KEY))
    .commit();
  if (res.succeeded) return fresh;
  return parseIcecastSecrets(res.responses[0]?.response_range?.kvs[0]?.value.toString());
}

/** The stored secrets, validated; throws on anything else. */
export function parseIcecastSecrets(stored: string | undefined): IcecastSecrets {
  let value: unknown;
  try {
    value = stored === undefined ? undefined : JSON.parse(stored);
  } catch {
    value = undefined;
  }
  if (!validate(value)) throw new Error(`the stored Icecast secrets at ${ICECAST_SECRETS_KEY} are invalid`);
  return value;
}
