import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { ASYNC_ENDPOINTS_OPTIONS } from '../async-endpoints.module-definition.js';
import type { ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';
import { JobStore, type JobStats } from '../store/job-store.js';
import { JobWorker } from '../worker/job-worker.js';
import { Telemetry } from './telemetry.js';

/** Store counts older than this are refreshed (in the background) when metrics are collected. */
const COUNTS_MAX_AGE_MS = 5000;

export function createTelemetry(options: ResolvedAsyncEndpointsOptions): Telemetry {
  return new Telemetry(options.store.type);
}

/**
 * Feeds the observable gauges: waiting and in-progress counts from the store (read at most every
 * few seconds, never on the collection path itself) and this process's worker utilization.
 */
@Injectable()
export class TelemetryGauges implements OnApplicationBootstrap {
  private counts: Pick<JobStats, 'waiting' | 'inProgress'> | null = null;
  private readAt = 0;
  private reading = false;

  constructor(
    private readonly telemetry: Telemetry,
    private readonly store: JobStore,
    private readonly worker: JobWorker,
    @Inject(ASYNC_ENDPOINTS_OPTIONS) private readonly options: ResolvedAsyncEndpointsOptions,
  ) {}

  onApplicationBootstrap(): void {
    this.refreshCounts();
    this.telemetry.observe({
      counts: () => {
        this.refreshCounts();
        return this.counts;
      },
      utilization: () => (this.worker.status.enabled ? this.worker.status.utilization : null),
    });
  }

  private refreshCounts(): void {
    if (this.reading || Date.now() - this.readAt < COUNTS_MAX_AGE_MS) return;
    this.reading = true;
    this.store
      .stats(Date.now())
      .then((stats) => {
        this.counts = { waiting: stats.waiting, inProgress: stats.inProgress };
        this.readAt = Date.now();
      })
      .catch(() => {
        this.counts = null; // unknown while the store is unreachable; health says so
      })
      .finally(() => {
        this.reading = false;
      });
  }
}
