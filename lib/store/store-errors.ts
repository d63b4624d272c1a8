/**
 * The store could not be reached or did not answer in time. The HTTP layer answers 503 with
 * `Retry-After`; workers log it, back off and retry.
 */
export class StoreUnavailableError extends Error {
  constructor(
    readonly storeType: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`The ${storeType} job store is unavailable: ${reason}`, options);
    this.name = 'StoreUnavailableError';
  }
}
