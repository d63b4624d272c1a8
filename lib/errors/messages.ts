/**
 * The texts of the library's errors, in one place. Tests and users match on them: change one only on
 * purpose. Each says the cause and the fix (the option, the handler, the job).
 */

export const queueFull = (waiting: number, maximumQueueSize: number): string =>
  `The job queue is full: ${waiting} jobs are waiting, the limit set by worker.maximumQueueSize is ${maximumQueueSize}. Retry later.`;

export const memoryStoreFullOfJobs = (liveJobs: number, maxRetainedJobs: number): string =>
  `The memory job store is full: it holds ${liveJobs} live (Queued, Scheduled, InProgress) jobs, the limit set by store.maxRetainedJobs (${maxRetainedJobs}); live jobs are never evicted. Submits get 503 until workers finish jobs. Raise store.maxRetainedJobs, lower worker.maximumQueueSize, or use the Redis store.`;

export const memoryStoreFullOfBytes = (liveBytes: number, needed: number, maxRetainedBytes: number): string =>
  `The memory job store is full: its live (Queued, Scheduled, InProgress) jobs hold ${liveBytes} bytes and a submit needs ${needed} more, over store.maxRetainedBytes (${maxRetainedBytes}); live jobs are never evicted. Submits get 503 until workers finish jobs. Raise store.maxRetainedBytes, lower worker.maximumQueueSize or http.bodyLimitBytes, or use the Redis store.`;

export const MEMORY_STORE_ACCEPTS_AGAIN = 'The memory job store accepts submissions again: it has room below its caps.';

/** The 503 detail for a full store: the numbers and the advice are for the operator's log, not for clients. */
export const STORE_FULL_DETAIL = 'The job store is full; nothing was stored. Retry later.';

export const IDEMPOTENCY_CONFLICT =
  'This idempotency key (or X-Async-Request-Id) was already used for a different request: another payload, or for an X-Async-Request-Id another endpoint or owner. Use a new key for a new request.';

export const unknownAsyncEndpoint = (endpointName: string): string =>
  `No @AsyncHandler('${endpointName}') is registered; add a provider with that name to a module.`;

export const storeUnavailable = (storeType: string, reason: string): string =>
  `The ${storeType} job store is unavailable: ${reason}`;

export const invalidOptions = (problems: readonly string[]): string =>
  `Invalid AsyncEndpointsModule options:\n${problems.map((p) => `  - ${p}`).join('\n')}`;

export const duplicateAsyncHandler = (name: string, firstClass: string, secondClass: string): string =>
  `Two handlers are declared for the async endpoint '${name}': ${firstClass} and ${secondClass}. ` +
  `Each @AsyncHandler name must be unique; rename one of them.`;

export const asyncHandlerWithoutHandle = (className: string, name: string): string =>
  `${className} is marked @AsyncHandler('${name}') but has no handle(context) method.`;

/** The start of both the boot error and the API-only warning for an `@AsyncEndpoint` without its handler. */
export const asyncEndpointWithoutHandler = (
  route: { name: string; controller: string; method: string; path: string },
  where: string,
): string =>
  `@AsyncEndpoint('${route.name}') on ${route.controller} (${route.method} ${route.path}) has no ` +
  `@AsyncHandler('${route.name}') provider, so ${where} its jobs: they wait, Queued, until a worker ` +
  `process with that handler claims them; a worker process must provide it (health lists '${route.name}' ` +
  `as unhandled while none is registered).`;

export const SCHEDULE_MODULE_MISSING =
  'AsyncEndpointsModule runs its worker and recovery timers through @nestjs/schedule, but no SchedulerRegistry was found. ' +
  "Add ScheduleModule.forRoot() (from '@nestjs/schedule') to your root module's imports, once.";
