import { isIP } from 'node:net';
import { Ajv } from 'ajv';
import { formatAjvErrors } from './mount.js';
import { jsonErrorMessage } from '../common/errors.js';

/**
 * What a node publishes about itself under its presence lease. Balancers and DNS read it;
 * radiod writes it every status poll. Pure model and validation.
 */
export interface NodeStatus {
  name: string;
  /** Public IPv4/IPv6 addresses listeners and sources connect to. */
  addresses: string[];
  /** Port of the node's Icecast, for redirects that bypass the HTTP proxy. */
  icecastPort: number;
  /** False when the local Icecast did not answer its last status poll. */
  icecastOk: boolean;
  /** Listeners per mount path on this node's Icecast, for the mounts that have any (older versions listed idle ones with 0 too). */
  mounts: Record<string, number>;
  listeners: number;
  /** Outbound audio, kbit/s. */
  bandwidthKbps: number;
  /** 0 means unlimited. */
  maxListeners: number;
  /** Outbound limit, kbit/s; 0 means unlimited. */
  maxBandwidthKbps: number;
  /** Milliseconds since the epoch when radiod produced this report. */
  reportedAt: number;
  /** Set while the node is drained: it takes no new listeners (absent means false). */
  draining?: boolean;
  /**
   * Published by the master only: the mounts a source (client or relay) feeds on the master's
   * Icecast, which is where every source lands. Absent mounts are off air.
   */
  onAir?: Record<string, OnAirMount>;
  /** The radiod software version (package.json), so a mixed-version cluster shows. */
  version?: string;
}

/** What is playing on one mount, as the master's Icecast reports it. */
export interface OnAirMount {
  /** When the current source connected, ms since the epoch. */
  since: number;
  title?: string;
  /** e.g. audio/mpeg */
  contentType?: string;
  bitrateKbps?: number;
}

const nodeStatusSchema = {
  type: 'object',
  additionalProperties: true,
  required: [
    'name',
    'addresses',
    'icecastPort',
    'icecastOk',
    'mounts',
    'listeners',
    'bandwidthKbps',
    'maxListeners',
    'maxBandwidthKbps',
    'reportedAt',
  ],
  properties: {
    name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9-]{0,62}$' },
    addresses: { type: 'array', items: { type: 'string' }, maxItems: 16 },
    icecastPort: { type: 'integer', minimum: 1, maximum: 65535 },
    icecastOk: { type: 'boolean' },
    mounts: { type: 'object', additionalProperties: { type: 'integer', minimum: 0 } },
    listeners: { type: 'integer', minimum: 0 },
    bandwidthKbps: { type: 'number', minimum: 0 },
    maxListeners: { type: 'integer', minimum: 0 },
    maxBandwidthKbps: { type: 'number', minimum: 0 },
    reportedAt: { type: 'number' },
    draining: { type: 'boolean' },
    onAir: {
      type: 'object',
      maxProperties: 10000,
      additionalProperties: {
        type: 'object',
        required: ['since'],
        additionalProperties: false,
        properties: {
          since: { type: 'number' },
          title: { type: 'string', maxLength: 1024 },
          contentType: { type: 'string', maxLength: 128 },
          bitrateKbps: { type: 'number', minimum: 0 },
        },
      },
    },
    version: { type: 'string', maxLength: 64 },
  },
} as const;

const validateShape = new Ajv({ allErrors: true }).compile<NodeStatus>(nodeStatusSchema);

export const NODE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9-]{0,62}$/;

/** Why a node's --name or --ip flags cannot identify it in the cluster (empty when fine). */
export function nodeIdentityProblems(name: string, ips: readonly string[] = []): string[] {
  const problems: string[] = [];
  if (!NODE_NAME_RE.test(name)) {
    problems.push(`--name must be 1-63 letters, digits or dashes, starting with a letter or digit, got "${name}"`);
  }
  const bad = ips.filter((a) => isIP(a) === 0);
  if (bad.length > 0) problems.push(`--ip must be IPv4 or IPv6 addresses, got ${bad.join(', ')}`);
  return problems;
}

export function nodeStatusProblems(value: unknown): string[] {
  if (!validateShape(value)) return [formatAjvErrors(validateShape.errors)];
  const bad = value.addresses.filter((a) => isIP(a) === 0);
  return bad.length > 0 ? [`invalid addresses: ${bad.join(', ')}`] : [];
}

export function parseNodeStatus(json: string): NodeStatus {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new Error(`node status is not valid JSON: ${jsonErrorMessage(err)}`);
  }
  const problems = nodeStatusProblems(value);
  if (problems.length > 0) throw new Error(`invalid node status: ${problems.join('; ')}`);
  return value as NodeStatus;
}
