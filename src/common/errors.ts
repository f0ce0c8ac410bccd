/**
 * Errors that reach users carry a stable code and one clear sentence, so scripts can match
 * on the code and people can read the message.
 */
export class AutoradioError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AutoradioError';
  }
}

export const ErrorCode = {
  invalidMountPath: 'AR_INVALID_MOUNT_PATH',
  invalidMount: 'AR_INVALID_MOUNT',
  mountExists: 'AR_MOUNT_EXISTS',
  mountNotFound: 'AR_MOUNT_NOT_FOUND',
  mountInUse: 'AR_MOUNT_IN_USE',
  concurrentEdit: 'AR_CONCURRENT_EDIT',
  invalidBackup: 'AR_INVALID_BACKUP',
  invalidFlag: 'AR_INVALID_FLAG',
  etcdUnavailable: 'AR_ETCD_UNAVAILABLE',
  invalidPolicy: 'AR_INVALID_LB_POLICY',
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
