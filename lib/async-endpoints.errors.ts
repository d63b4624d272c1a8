/** A submit found `worker.maximumQueueSize` jobs waiting; nothing was stored. */
export class QueueFullError extends Error {
  constructor(
    readonly waiting: number,
    readonly maximumQueueSize: number,
  ) {
    super(
      `The job queue is full: ${waiting} jobs are waiting, the limit set by worker.maximumQueueSize is ${maximumQueueSize}. Retry later.`,
    );
    this.name = 'QueueFullError';
  }
}

/**
 * The store has no room for another job (the memory store's `maxRetainedJobs` / `maxRetainedBytes`,
 * reached by live jobs alone); nothing was stored. Answered 503 with `Retry-After` over HTTP.
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
    super(
      'This idempotency key (or X-Async-Request-Id) was already used for a different request: another payload, or for an X-Async-Request-Id another endpoint or owner. Use a new key for a new request.',
    );
    this.name = 'IdempotencyConflictError';
  }
}

/** A submit named an endpoint that has no `@AsyncHandler` and workers run in this process. */
export class UnknownAsyncEndpointError extends Error {
  constructor(readonly endpointName: string) {
    super(`No @AsyncHandler('${endpointName}') is registered; add a provider with that name to a module.`);
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
