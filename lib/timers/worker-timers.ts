import { Inject, Injectable, Optional } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { ASYNC_ENDPOINTS_OPTIONS } from '../async-endpoints.module-definition.js';
import { ScheduleModuleMissingError } from '../errors/boot.errors.js';
import type { ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';

/**
 * The library's timers, registered in @nestjs/schedule's SchedulerRegistry under
 * `async-endpoints:<name>:<workerId>` so they show up next to the app's own and are inspectable.
 */
@Injectable()
export class WorkerTimers {
  private readonly registry: SchedulerRegistry;
  private readonly suffix: string;

  constructor(
    @Optional() @Inject(SchedulerRegistry) registry: SchedulerRegistry | undefined,
    @Inject(ASYNC_ENDPOINTS_OPTIONS) options: ResolvedAsyncEndpointsOptions,
  ) {
    const needsTimers = options.worker.enabled || options.recovery.enableDistributedJobRecovery;
    if (!registry && needsTimers) throw new ScheduleModuleMissingError();
    this.registry = registry as SchedulerRegistry;
    this.suffix = options.worker.workerId;
  }

  /** The worker's clock for job times; the testing kit moves it forward to skip retry delays. */
  now(): number {
    return Date.now();
  }

  every(name: string, ms: number, tick: () => unknown): void {
    this.cancel(name);
    const interval = setInterval(() => void tick(), ms);
    this.registry.addInterval(this.key(name), interval);
  }

  once(name: string, ms: number, fire: () => unknown): void {
    this.cancel(name);
    const timeout = setTimeout(() => {
      this.registry.deleteTimeout(this.key(name));
      fire();
    }, ms);
    this.registry.addTimeout(this.key(name), timeout);
  }

  cancel(name: string): void {
    const key = this.key(name);
    if (this.registry?.doesExist('interval', key)) this.registry.deleteInterval(key);
    if (this.registry?.doesExist('timeout', key)) this.registry.deleteTimeout(key);
  }

  private key(name: string): string {
    return `async-endpoints:${name}:${this.suffix}`;
  }
}
