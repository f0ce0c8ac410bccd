/**
 * Errors that reach users carry a stable code and one clear sentence, so scripts can match
 * on the code and people can read the message.
 */
export class AutoradioError extends Error {
  constructor(
    readonly code: ErrorCodeName,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AutoradioError';
  }
}

/**
 * Every code a user can see, on stderr (`radioctl: message [CODE]`) and in `--json` errors.
 * Codes are stable: scripts match on them. Each one is listed in README's "Error codes".
 */
export const ErrorCode = {
  usage: 'AR_USAGE',
  invalidConfig: 'AR_INVALID_CONFIG',
  invalidMountPath: 'AR_INVALID_MOUNT_PATH',
  invalidMount: 'AR_INVALID_MOUNT',
  mountExists: 'AR_MOUNT_EXISTS',
  mountNotFound: 'AR_MOUNT_NOT_FOUND',
  mountInUse: 'AR_MOUNT_IN_USE',
  concurrentEdit: 'AR_CONCURRENT_EDIT',
  invalidBackup: 'AR_INVALID_BACKUP',
  restoreIncomplete: 'AR_RESTORE_INCOMPLETE',
  etcdUnavailable: 'AR_ETCD_UNAVAILABLE',
  writeUnconfirmed: 'AR_WRITE_UNCONFIRMED',
  invalidPolicy: 'AR_INVALID_LB_POLICY',
  invalidCertificate: 'AR_INVALID_CERTIFICATE',
  invalidNodeName: 'AR_INVALID_NODE_NAME',
  nodeAlive: 'AR_NODE_ALIVE',
  internal: 'AR_INTERNAL',
} as const;

export type ErrorCodeName = (typeof ErrorCode)[keyof typeof ErrorCode];

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * JSON.parse's message without the excerpt of the input V8 quotes in it (`Unexpected token
 * 'x', "x{"passwor"... is not valid JSON`): the input may hold a secret and the message is
 * logged.
 */
export function jsonErrorMessage(err: unknown): string {
  return errorMessage(err).replace(/,\s*".*" is not valid JSON\s*$/s, ' (not valid JSON)');
}
