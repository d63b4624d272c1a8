/**
 * The public API of `nestjs-async-endpoints`, export by export: a name here is a promise to users.
 * Helpers and internal classes stay out (tests and the sample import them by path). The API report
 * test (test/api/public-api.spec.ts) fails when this surface changes; docs/architecture.md says why
 * each group is public.
 */

// The module, its injectables and the options they read.
export { AsyncEndpointsModule } from './async-endpoints.module.js';
export { ASYNC_ENDPOINTS_OPTIONS } from './async-endpoints.module-definition.js';
export {
  AsyncEndpointsService,
  type JobDocumentPage,
  type ListOptions,
  type PurgeOptions,
  type SubmitOptions,
  type WaitOptions,
} from './async-endpoints.service.js';
export { AsyncEndpointsHealthIndicator } from './health/async-endpoints.health.js';
export type {
  AsyncEndpointRequest,
  AsyncEndpointsModuleOptions,
  CaptureHeadersOptions,
  CaptureQueryParamsOptions,
  DashboardGuard,
  DashboardOptions,
  HealthOptions,
  HttpOptions,
  JobManagerOptions,
  MemoryStoreConfig,
  RecoveryOptions,
  RedisStoreConfig,
  ResolvedAsyncEndpointsOptions,
  RetentionOptions,
  StoreConfig,
  WorkerOptions,
} from './options/async-endpoints-options.js';

// Declaring endpoints and handlers.
export { AsyncEndpoint } from './http/async-endpoint.decorator.js';
export { AsyncHandler, type AsyncHandlerOptions } from './handlers/async-handler.decorator.js';
export type { AsyncContext, AsyncEndpointHandler, AsyncJobInfo, CapturedHeaders } from './handlers/async-context.js';
export { CREDENTIAL_NAME_PATTERN } from './http/capture-headers.js';

// What a job looks like to clients, handlers and stores.
export type { Job, JsonValue } from './job/job.js';
export type { JobDocument } from './job/job-document.js';
export { JobErrorCode, type JobError } from './job/job-error.js';
export { JobStatus } from './job/job-status.js';

// Errors: what the library throws, and the one a handler throws.
export {
  AsyncHandlerDeclarationError,
  IdempotencyConflictError,
  InvalidAsyncEndpointsOptionsError,
  InvalidPayloadError,
  NonRetryableError,
  QueueFullError,
  ScheduleModuleMissingError,
  StoreFullError,
  StoreUnavailableError,
  UnknownAsyncEndpointError,
} from './errors/index.js';

// RFC 9457 answers from a guard, pipe or interceptor on an async route.
export { ProblemException, problem, type ProblemDetails } from './http/problem-details.js';

// The store contract, for a custom store, and the two stores of the library.
export {
  InvalidCursorError,
  JobStore,
  type CancelResult,
  type ClaimedJob,
  type ClaimOptions,
  type CompleteOutcome,
  type CreateJobOptions,
  type CreateJobResult,
  type FailOptions,
  type FailOutcome,
  type JobPage,
  type JobStats,
  type Lease,
  type ListJobsOptions,
  type NameStats,
  type NewJob,
  type PurgeJobsOptions,
  type RecoverJobsOptions,
  type RecoveryReport,
  type ReleaseOutcome,
  type RenewResult,
  type Retention,
  type RetryJobResult,
  type StoreEvent,
  type UnreadableJobReport,
  type StoreEventListener,
  type StoreEventType,
  type TerminalJobStatus,
  type WorkerRegistration,
} from './store/job-store.js';
export { MemoryJobStore, type MemoryStoreLimits } from './store/memory/memory-job-store.js';
export { RedisJobStore, type RedisStoreOptions } from './store/redis/redis-job-store.js';
