/**
 * `nestjs-async-endpoints/testing`: test handlers and async routes without waiting on timers.
 * Kept out of the main entry point so that production code never loads it.
 */
export { AsyncEndpointsTestingModule, type AsyncEndpointsTestingOptions } from './async-endpoints-testing.module.js';
export {
  AsyncEndpointsTestHarness,
  DrainError,
  type DrainOptions,
  type StuckJob,
} from './async-endpoints-test-harness.js';
export {
  createAsyncContext,
  type AsyncContextInit,
  type LoggedLine,
  type TestAsyncContext,
} from './create-async-context.js';
