/**
 * Throw from a handler to fail the job at once, without further retries
 * (for input that can never succeed, for example).
 */
export class NonRetryableError extends Error {
  readonly code: string;
  /** Its message is written for the client: the job document shows it (see `toJobError`). */
  readonly expose = true;

  constructor(message: string, code = 'NON_RETRYABLE') {
    super(message);
    this.name = 'NonRetryableError';
    this.code = code;
  }
}
