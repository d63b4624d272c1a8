/** The error recorded on a job: the last failed attempt's code and message. */
export interface JobError {
  code: string;
  /** The handler error's own message when it is public (see `toJobError`), else a generic text with the code. */
  message: string;
  /** Stored and shown only with `http.exposeErrorDetails: true`. */
  type?: string;
  stack?: string;
}

/** Error codes the library itself records. */
export const JobErrorCode = {
  Timeout: 'JOB_TIMEOUT',
  RecoveryExhausted: 'JOB_RECOVERY_EXHAUSTED',
  /**
   * No longer recorded: a worker claims only the names it has handlers for, and a job nobody handles
   * waits. Jobs failed by 0.1.x workers may still carry it until their retention ends.
   */
  HandlerNotFound: 'HANDLER_NOT_FOUND',
  Canceled: 'JOB_CANCELED',
  /** The stored job could not be read back (changed outside the store): failed instead of run. */
  Unreadable: 'JOB_UNREADABLE',
} as const;

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
 * Whether an error's message is meant for the client: an error with `expose: true` (as
 * `NonRetryableError` has, and as http-errors sets on 4xx errors). Other messages may carry internal
 * details (hosts, connection strings, passwords), so they are not stored unless details are on.
 */
function isPublicError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { expose?: unknown }).expose === true;
}

/**
 * Turns anything a handler threw into the error stored on the job, written to the log and to the trace.
 * The code is always kept. Without `exposeDetails` (`http.exposeErrorDetails`), the message is kept only
 * for a public error (`isPublicError`), else it is "The handler failed (CODE)."; type and stack are
 * kept only with it.
 */
export function toJobError(error: unknown, exposeDetails = false): JobError {
  const code = errorCodeOf(error);
  if (!exposeDetails && !isPublicError(error)) return { code, message: `The handler failed (${code}).` };
  const message = error instanceof Error ? error.message : typeof error === 'string' ? error : 'Handler failed';
  const jobError: JobError = { code, message };
  if (exposeDetails && error instanceof Error) {
    jobError.type = error.constructor.name;
    if (error.stack) jobError.stack = error.stack;
  }
  return jobError;
}
