import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { ASYNC_ENDPOINTS_OPTIONS } from '../async-endpoints.module-definition.js';
import type { ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';
import { JobStore, type JobStats } from '../store/job-store.js';
import { JobWorker } from '../worker/job-worker.js';
import { HandlerRegistry } from '../handlers/handler-registry.js';
import { UnhandledNames } from '../health/unhandled-names.js';
import { Telemetry } from './telemetry.js';

/** Store counts older than this are refreshed (in the background) when metrics are collected. */
const COUNTS_MAX_AGE_MS = 5000;

export function createTelemetry(options: ResolvedAsyncEndpointsOptions): Telemetry {
  return new Telemetry(options.store.type);
}

/**
 * Feeds the observable gauges: waiting counts per name (and those of names no worker runs) and the
 * in-progress count from the store (read at most every few seconds, never on the collection path
 * itself), and this process's worker utilization. Unhandled names are logged (UnhandledNames).
 */
@Injectable()
export class TelemetryGauges implements OnApplicationBootstrap {
  private counts: Pick<JobStats, 'inProgress' | 'names'> | null = null;
  /** The time the counts were read at: the ages they hold are as of then. */
  private countsAt = 0;
  /**
   * Every name seen (this process's handlers, and the store's names): one that no longer has jobs is
   * observed as 0 rather than dropped, so its series goes to 0 instead of stopping.
   */
  private readonly knownNames = new Set<string>();
  private readAt = 0;
  private reading = false;

  constructor(
    private readonly telemetry: Telemetry,
    private readonly store: JobStore,
    private readonly worker: JobWorker,
    private readonly unhandledNames: UnhandledNames,
    private readonly handlers: HandlerRegistry,
    @Inject(ASYNC_ENDPOINTS_OPTIONS) private readonly options: ResolvedAsyncEndpointsOptions,
  ) {}

  onApplicationBootstrap(): void {
    for (const name of this.handlers.names()) this.knownNames.add(name);
    this.refreshCounts();
    this.telemetry.observe({
      counts: () => {
        this.refreshCounts();
        return this.countsNow();
      },
      utilization: () => (this.worker.status.enabled ? this.worker.status.utilization : null),
    });
  }

  /** The counts as last read, their ages brought up to now (a job still waiting has waited longer since). */
  private countsNow(): Pick<JobStats, 'inProgress' | 'names'> | null {
    if (!this.counts) return null;
    const since = Date.now() - this.countsAt;
    const names: JobStats['names'] = {};
    for (const [name, stats] of Object.entries(this.counts.names)) {
      names[name] =
        stats.oldestWaitingAgeMs === null ? stats : { ...stats, oldestWaitingAgeMs: stats.oldestWaitingAgeMs + since };
    }
    return { inProgress: this.counts.inProgress, names };
  }

  private refreshCounts(): void {
    if (this.reading || Date.now() - this.readAt < COUNTS_MAX_AGE_MS) return;
    this.reading = true;
    const now = Date.now();
    this.store
      .stats(now)
      .then((stats) => {
        const names: JobStats['names'] = {};
        for (const name of Object.keys(stats.names)) this.knownNames.add(name);
        for (const name of this.knownNames) {
          names[name] = stats.names[name] ?? { waiting: 0, inProgress: 0, oldestWaitingAgeMs: null, workers: 0 };
        }
        this.counts = { inProgress: stats.inProgress, names };
        this.countsAt = now;
        this.unhandledNames.check(stats);
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
