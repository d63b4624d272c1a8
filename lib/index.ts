export { AsyncEndpointsModule } from './async-endpoints.module.js';
export { ASYNC_ENDPOINTS_OPTIONS } from './async-endpoints.module-definition.js';
export { AsyncEndpointsService, type SubmitOptions, type WaitOptions } from './async-endpoints.service.js';
export {
  IdempotencyConflictError,
  InvalidPayloadError,
  QueueFullError,
  StoreFullError,
  UnknownAsyncEndpointError,
} from './async-endpoints.errors.js';
export * from './options/index.js';
export * from './job/index.js';
export * from './store/job-store.js';
export { StoreUnavailableError } from './store/store-errors.js';
export { MemoryJobStore, type MemoryStoreLimits } from './store/memory/memory-job-store.js';
export { RedisJobStore, type RedisStoreOptions } from './store/redis/redis-job-store.js';
export { AsyncHandler, type AsyncHandlerOptions } from './handlers/async-handler.decorator.js';
export type { AsyncContext, AsyncEndpointHandler, AsyncJobInfo, CapturedHeaders } from './handlers/async-context.js';
export { AsyncHandlerDeclarationError } from './handlers/handler-registry.js';
export { AsyncEndpoint } from './http/async-endpoint.decorator.js';
export { ProblemDetailsFilter, ProblemException, problem, type ProblemDetails } from './http/problem-details.js';
export { CREDENTIAL_NAME_PATTERN, SENSITIVE_HEADERS } from './http/capture-headers.js';
export { AsyncEndpointsHealthIndicator } from './health/async-endpoints.health.js';
export { ScheduleModuleMissingError } from './timers/worker-timers.js';
