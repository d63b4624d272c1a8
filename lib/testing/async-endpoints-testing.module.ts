import { type DynamicModule, Module } from '@nestjs/common';
import { AsyncEndpointsModule } from '../async-endpoints.module.js';
import type { AsyncEndpointsModuleOptions } from '../options/async-endpoints-options.js';
import { JobWorker } from '../worker/job-worker.js';
import { WorkerTimers } from '../timers/worker-timers.js';
import { AsyncEndpointsTestHarness } from './async-endpoints-test-harness.js';
import { ManualJobWorker, ManualWorkerTimers } from './manual-worker.js';

/** Options of `AsyncEndpointsTestingModule.forRoot`: those of `AsyncEndpointsModule.forRoot`, but the store. */
export type AsyncEndpointsTestingOptions = Omit<AsyncEndpointsModuleOptions, 'store'> & { isGlobal?: boolean };

/** `worker.shutdownTimeoutMs` unless the options set it. */
const TESTING_SHUTDOWN_TIMEOUT_MS = 1000;

/**
 * The library as `AsyncEndpointsModule.forRoot(options)` sets it up, for tests: the memory store, and a
 * worker that runs jobs only when the test calls `AsyncEndpointsTestHarness.drain()`, with no timers
 * (no `ScheduleModule.forRoot()` needed). Inject `AsyncEndpointsTestHarness` to drive it.
 */
@Module({})
export class AsyncEndpointsTestingModule {
  static forRoot(options: AsyncEndpointsTestingOptions = {}): DynamicModule {
    const library = AsyncEndpointsModule.forRoot({
      ...options,
      store: { type: 'memory' },
      // A test that leaves a handler hanging should not wait 30 s for the app to close.
      worker: { shutdownTimeoutMs: TESTING_SHUTDOWN_TIMEOUT_MS, ...options.worker },
    });
    return {
      ...library,
      // Same tokens as the library's own providers, listed after them: these win.
      providers: [
        ...(library.providers ?? []),
        { provide: WorkerTimers, useClass: ManualWorkerTimers },
        { provide: JobWorker, useClass: ManualJobWorker },
        AsyncEndpointsTestHarness,
      ],
      exports: [...(library.exports ?? []), AsyncEndpointsTestHarness],
    };
  }
}
