export {
  AsyncHandlerDeclarationError,
  InvalidAsyncEndpointsOptionsError,
  ScheduleModuleMissingError,
} from './boot.errors.js';
export { NonRetryableError } from './non-retryable.error.js';
export { StoreUnavailableError } from './store-unavailable.error.js';
export {
  IdempotencyConflictError,
  InvalidPayloadError,
  QueueFullError,
  StoreFullError,
  UnknownAsyncEndpointError,
} from './submit.errors.js';
