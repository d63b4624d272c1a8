import { IDEMPOTENCY_CONFLICT, queueFull, unknownAsyncEndpoint } from './messages.js';

/** A submit found `worker.maximumQueueSize` jobs waiting; nothing was stored. */
export class QueueFullError extends Error {
  constructor(
    readonly waiting: number,
    readonly maximumQueueSize: number,
  ) {
    super(queueFull(waiting, maximumQueueSize));
    this.name = 'QueueFullError';
  }
}

/**
 * The store has no room for another job (the memory store's `maxRetainedJobs` / `maxRetainedBytes`,
 * reached by live jobs alone); nothing was stored. The message gives the counts and the option to
 * change. Answered 503 with `Retry-After` over HTTP, with a generic detail: the counts are the
 * operator's, and the store logs them once per outage.
 */
export class StoreFullError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'StoreFullError';
  }
}

/** The idempotency key (or job id) was used before for another endpoint, owner or payload. */
export class IdempotencyConflictError extends Error {
  constructor(readonly existingJobId: string) {
    super(IDEMPOTENCY_CONFLICT);
    this.name = 'IdempotencyConflictError';
  }
}

/** A submit named an endpoint that has no `@AsyncHandler` and workers run in this process. */
export class UnknownAsyncEndpointError extends Error {
  constructor(readonly endpointName: string) {
    super(unknownAsyncEndpoint(endpointName));
    this.name = 'UnknownAsyncEndpointError';
  }
}

/**
 * `AsyncEndpointsService.submit` refused the payload: nested deeper than `http.maxJsonDepth`, or an
 * object in it has a `__proto__` key. The message says which; nothing was stored.
 */
export class InvalidPayloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidPayloadError';
  }
}
