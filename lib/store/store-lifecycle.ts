import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ASYNC_ENDPOINTS_OPTIONS } from '../async-endpoints.module-definition.js';
import type { ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';
import { JobStore } from './job-store.js';
import { capsBelowQueueLimit } from './memory/retained-size.js';
import { libraryLogger } from '../observability/library-logger.js';

/**
 * Opens the store at module init (checking it when `failFastOnStoreUnavailable`) and closes it
 * last at shutdown, after the worker drained: never while a handler may still write.
 */
@Injectable()
export class StoreLifecycle implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = libraryLogger();

  constructor(
    private readonly store: JobStore,
    @Inject(ASYNC_ENDPOINTS_OPTIONS) private readonly options: ResolvedAsyncEndpointsOptions,
  ) {}

  async onModuleInit(): Promise<void> {
    const { store, worker, http } = this.options;
    if (!(store instanceof JobStore) && store.type === 'memory') {
      for (const warning of capsBelowQueueLimit(store, worker.maximumQueueSize, http.bodyLimitBytes))
        this.logger.warn(warning);
    }
    await this.store.init();
    try {
      await this.store.ping();
    } catch (error) {
      const message = `The ${this.store.type} job store is unreachable at startup: ${(error as Error).message}`;
      if (this.options.failFastOnStoreUnavailable) {
        // Nest runs no shutdown hooks for a failed boot: close here, or reconnect timers keep the process alive.
        await this.onApplicationShutdown();
        throw new Error(`${message}. Boot stopped because failFastOnStoreUnavailable is true.`);
      }
      this.logger.error(`${message}. Starting anyway (failFastOnStoreUnavailable is false); health reports down.`);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    // A store instance handed in by the app belongs to the app.
    if (this.options.store instanceof JobStore) return;
    await this.store.close();
  }
}
