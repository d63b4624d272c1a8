/** The error recorded on a job: the last failed attempt's code and message. */
export interface JobError {
  code: string;
  message: string;
  /** Shown in the job document only with `http.exposeErrorDetails: true`. */
  type?: string;
  stack?: string;
}

/** Error codes the library itself records. */
export const JobErrorCode = {
  Timeout: 'JOB_TIMEOUT',
  RecoveryExhausted: 'JOB_RECOVERY_EXHAUSTED',
  HandlerNotFound: 'HANDLER_NOT_FOUND',
  Canceled: 'JOB_CANCELED',
  /** The stored job could not be read back (changed outside the store): failed instead of run. */
  Unreadable: 'JOB_UNREADABLE',
} as const;

/**
 * Throw from a handler to fail the job at once, without further retries
 * (for input that can never succeed, for example).
 */
export class NonRetryableError extends Error {
  readonly code: string;

  constructor(message: string, code = 'NON_RETRYABLE') {
    super(message);
    this.name = 'NonRetryableError';
    this.code = code;
  }
}

/** `error.code` when it is a non-empty string, else the error's class name in upper snake case. */
export function errorCodeOf(error: unknown): string {
  if (error instanceof Error || (typeof error === 'object' && error !== null)) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code.length > 0) return code;
    const name = (error as { constructor?: { name?: string } }).constructor?.name ?? 'Error';
    return toUpperSnake(name === 'Object' ? 'Error' : name);
  }
  return 'ERROR';
}

function toUpperSnake(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .toUpperCase();
}

/**
 * Turns anything a handler threw into the error stored on the job. Type and stack are stored too;
 * the job document shows them only with `http.exposeErrorDetails`.
 */
export function toJobError(error: unknown): JobError {
  const message =
    error instanceof Error ? error.message : typeof error === 'string' ? error : 'Handler failed';
  const jobError: JobError = { code: errorCodeOf(error), message };
  if (error instanceof Error) {
    jobError.type = error.constructor.name;
    if (error.stack) jobError.stack = error.stack;
  }
  return jobError;
}
