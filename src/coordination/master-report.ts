import { Ajv } from 'ajv';
import type { ClusterState, MasterInfo } from './cluster-state.js';
import { formatAjvErrors } from './mount.js';
import { jsonErrorMessage } from '../common/errors.js';

/**
 * What a front door tells its peers about the master (`GET /_master`): the master as its own
 * view holds it, and whether that view is in touch with etcd. A node cut from etcd but not from
 * its peers learns the new master this way (peer-master-lookup.ts). Nothing secret: the master's
 * name and addresses are on the status page too.
 */
export interface MasterReport {
  /** The node that answered. */
  node: string;
  /** False while its view is the last known state because etcd is unreachable. */
  connected: boolean;
  /** etcd revision its view reflects, as decimal digits (a 64-bit number). */
  revision: string;
  master: MasterInfo | null;
}

export const MASTER_REPORT_PATH = '/_master';

/** Large enough for any honest report (a master has a handful of addresses). */
export const MASTER_REPORT_MAX_BYTES = 4096;

export function masterReportOf(state: ClusterState, nodeName: string): MasterReport {
  const m = state.master;
  return {
    node: nodeName,
    connected: state.connected,
    revision: state.revision,
    master: m ? { name: m.name, addresses: [...m.addresses], icecastPort: m.icecastPort } : null,
  };
}

const schema = {
  type: 'object',
  required: ['node', 'connected', 'revision', 'master'],
  additionalProperties: true,
  properties: {
    node: { type: 'string', minLength: 1, maxLength: 253 },
    connected: { type: 'boolean' },
    revision: { type: 'string', pattern: '^[0-9]{1,20}$' },
    master: {
      anyOf: [
        { type: 'null' },
        {
          type: 'object',
          required: ['name', 'addresses', 'icecastPort'],
          additionalProperties: true,
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 253 },
            addresses: { type: 'array', minItems: 1, maxItems: 16, items: { type: 'string', minLength: 1, maxLength: 64 } },
            icecastPort: { type: 'integer', minimum: 1, maximum: 65535 },
          },
        },
      ],
    },
  },
} as const;

const validate = new Ajv({ allErrors: true }).compile<MasterReport>(schema);

/** Parses a peer's answer; throws with the reason when it is not a master report. */
export function parseMasterReport(json: string): MasterReport {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new Error(`master report: ${jsonErrorMessage(err)}`);
  }
  if (!validate(value)) throw new Error(`master report: ${formatAjvErrors(validate.errors)}`);
  const m = value.master;
  return {
    node: value.node,
    connected: value.connected,
    revision: value.revision,
    master: m ? { name: m.name, addresses: [...m.addresses], icecastPort: m.icecastPort } : null,
  };
}
