import { storeUnavailable } from './messages.js';

/**
 * The store could not be reached or did not answer in time. The HTTP layer answers 503 with
 * `Retry-After`; workers log it, back off and retry.
 */
export class StoreUnavailableError extends Error {
  /**
   * True when the operation may have taken effect all the same: it reached the store but its answer
   * did not come back (a timeout, a connection lost mid-call). False when it never ran.
   */
  readonly outcomeUnknown: boolean;
  /**
   * True when the store has logged this outage itself (once per outage, as for a full Redis): the
   * caller answers the request without logging each failure again.
   */
  readonly logged: boolean;
  /** What the client is told (the 503's detail) when the usual text would mislead; null for the usual text. */
  readonly detail: string | null;

  constructor(
    readonly storeType: string,
    readonly reason: string,
    options: { cause?: unknown; outcomeUnknown?: boolean; logged?: boolean; detail?: string } = {},
  ) {
    super(storeUnavailable(storeType, reason), { cause: options.cause });
    this.name = 'StoreUnavailableError';
    this.outcomeUnknown = options.outcomeUnknown ?? true;
    this.logged = options.logged ?? false;
    this.detail = options.detail ?? null;
  }
}
