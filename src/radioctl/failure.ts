import { CommanderError } from 'commander';
import { AutoradioError, ErrorCode, errorMessage, type ErrorCodeName } from '../common/errors.js';
import { etcdFailureReason, isEtcdUnavailable } from '../coordination/etcd-failure.js';

/** What radioctl tells the user when a command does not succeed. */
export interface Failure {
  code: ErrorCodeName;
  message: string;
  /** 1: refused or failed; 2: usage error. */
  status: 1 | 2;
}

export interface EtcdSettings {
  etcdUrls: readonly string[];
  etcdCert?: string;
}

/**
 * The failure to report for an error thrown by a command. Pure. Errors the store could not
 * vouch for (a write etcd did not confirm) arrive as AutoradioErrors already: an error that
 * only says etcd is unreachable comes from a read or a refused connection, so nothing changed.
 */
export function describeFailure(e: unknown, etcd: EtcdSettings): Failure {
  if (e instanceof CommanderError) return { code: ErrorCode.usage, message: e.message.replace(/^error: /, ''), status: 2 };
  if (e instanceof AutoradioError) return { code: e.code, message: e.message, status: 1 };
  if (isEtcdUnavailable(e)) {
    // A TLS etcd that wants a client certificate just drops the handshake: say what may be missing.
    const hint =
      etcd.etcdUrls.some((u) => u.startsWith('https:')) && !etcd.etcdCert
        ? '; if etcd requires client certificates, pass --etcd-cert and --etcd-key'
        : '';
    return {
      code: ErrorCode.etcdUnavailable,
      message: `etcd is unreachable at ${etcd.etcdUrls.join(',')} (${etcdFailureReason(e)}); nothing was changed${hint}`,
      status: 1,
    };
  }
  return { code: ErrorCode.internal, message: errorMessage(e), status: 1 };
}

/** The one stderr line: `radioctl: MESSAGE [CODE]`, or with --json `{"error":{...}}`. Pure. */
export function failureLine(f: Failure, json: boolean): string {
  const message = f.message.replace(/\s*\n\s*/g, ' ');
  return json ? JSON.stringify({ error: { code: f.code, message } }) : `radioctl: ${message} [${f.code}]`;
}
