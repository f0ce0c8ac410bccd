import {
  ClientClosedError,
  GRPCCancelledError,
  GRPCDeadlineExceededError,
  GRPCUnavailableError,
  isRecoverableError,
} from 'etcd3';
import { BrokenCircuitError } from 'cockatiel';
import { errorMessage } from '../common/errors.js';

/**
 * How a failed etcd call ended, told by the error's type (never by its text):
 * - `unreachable`: etcd was not reached, so a write was not applied;
 * - `unanswered`: the request may have reached etcd but no answer came back in time, so a
 *   write may or may not have been applied;
 * - `other`: etcd answered with an error, or the failure is not etcd's.
 */
export type EtcdFailure = 'unreachable' | 'unanswered' | 'other';

export function classifyEtcdFailure(err: unknown): EtcdFailure {
  // The circuit breaker (cockatiel) refuses calls without sending them; IsolatedCircuitError
  // is a subclass.
  if (err instanceof BrokenCircuitError) return 'unreachable';
  if (err instanceof GRPCDeadlineExceededError || err instanceof GRPCCancelledError) return 'unanswered';
  if (err instanceof GRPCUnavailableError) return 'unreachable';
  if (err instanceof ClientClosedError) return 'other';
  if (err instanceof Error && isRecoverableError(err)) return 'unanswered';
  return 'other';
}

export function isEtcdUnavailable(err: unknown): boolean {
  return classifyEtcdFailure(err) !== 'other';
}

/** A few words on why etcd did not answer, for one-line error messages. */
export function etcdFailureReason(err: unknown): string {
  if (err instanceof BrokenCircuitError) return 'repeated failures';
  if (err instanceof GRPCDeadlineExceededError) return 'no answer in time';
  const text = errorMessage(err);
  // The type says "unavailable"; the system error in its text says why, when there is one.
  if (/ECONNREFUSED/.test(text)) return 'connection refused';
  if (/ENOTFOUND|EAI_AGAIN/.test(text)) return 'host name not found';
  return text.split(/[.\n]/)[0] ?? text;
}
