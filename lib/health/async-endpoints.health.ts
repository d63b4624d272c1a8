import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { ASYNC_ENDPOINTS_OPTIONS } from '../async-endpoints.module-definition.js';
import type { ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';
import { JobStore } from '../store/job-store.js';
import { JobWorker } from '../worker/job-worker.js';
import { libraryLogger } from '../observability/library-logger.js';
import { UnhandledNames } from './unhandled-names.js';

/** A failing health check logs its cause at most this often (health is polled every few seconds). */
const UNREACHABLE_LOG_INTERVAL_MS = 60_000;

const PING_TIMEOUT_MS = 2000;

/**
 * How long the worker loop may go without a round before health calls it stalled. The loop goes round
 * at least once per poll interval, plus one store call (a Redis command times out after 1.5 s): three
 * poll intervals, and at least 5 s, stay above that with room for event-loop lag.
 */
export function stallThresholdMs(pollingIntervalMs: number): number {
  return Math.max(5000, 3 * pollingIntervalMs);
}

/**
 * Terminus indicator: store reachable (and its ping latency), waiting and in-progress counts, the
 * oldest waiting job's age, the same per job name with its registered workers, the names nobody runs
 * (`unhandled`), and whether this process's worker loop still goes round. It reports down, never throws.
 */
@Injectable()
export class AsyncEndpointsHealthIndicator {
  private readonly logger = libraryLogger();
  private lastUnreachableLogAt = Number.NEGATIVE_INFINITY;

  /** @internal Nest injects it; users get the instance from the module, never construct it. */
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly store: JobStore,
    private readonly worker: JobWorker,
    private readonly unhandledNames: UnhandledNames,
    @Inject(ASYNC_ENDPOINTS_OPTIONS) private readonly options: ResolvedAsyncEndpointsOptions,
  ) {}

  /**
   * The `key` entry of a Terminus check: up with the store's ping time, the waiting and in-progress
   * counts (in total and per name) and the worker's state; down (never a throw) when the store does not
   * answer in time or the worker loop has stalled. Unhandled names keep it up: an API process must not
   * be restarted because a worker deployment is missing; `unhandled` names them.
   */
  async isHealthy<const Key extends string = 'async-endpoints'>(
    key: Key = 'async-endpoints' as Key,
  ): Promise<HealthIndicatorResult<Key>> {
    const indicator = this.health.check(key);
    const worker = this.workerState();
    const base = { store: this.store.type, ...this.store.diagnostics(), worker };
    const started = performance.now();
    try {
      await withTimeout(this.store.ping(), PING_TIMEOUT_MS);
      const pingMs = Math.round((performance.now() - started) * 100) / 100;
      const stats = await withTimeout(this.store.stats(Date.now()), PING_TIMEOUT_MS);
      const details = {
        ...base,
        pingMs,
        waiting: stats.waiting,
        inProgress: stats.inProgress,
        oldestWaitingAgeMs: stats.oldestWaitingAgeMs,
        names: stats.names,
        unhandled: this.unhandledNames.check(stats),
      };
      if (worker.stalled) return indicator.down({ ...details, message: 'The worker loop has stalled' });
      return indicator.up(details);
    } catch (error) {
      // Health answers are often public: the cause (hosts, ports) goes to the log, not here.
      this.logUnreachable(error);
      return indicator.down({ ...base, message: 'Job store unreachable' });
    }
  }

  private logUnreachable(error: unknown): void {
    const now = Date.now();
    if (now - this.lastUnreachableLogAt < UNREACHABLE_LOG_INTERVAL_MS) return;
    this.lastUnreachableLogAt = now;
    const cause = error instanceof Error ? error.message : String(error);
    this.logger.warn(`Health check: the job store is unreachable (${cause}); logged at most once a minute.`);
  }

  private workerState() {
    const status = this.worker.status;
    if (!status.enabled) return { enabled: false, stalled: false };
    const last = status.lastLoopAt;
    const stallAfterMs = stallThresholdMs(this.options.worker.pollingIntervalMs);
    const sinceMs = last === null ? null : Date.now() - last;
    return {
      enabled: true,
      workerId: status.workerId,
      active: status.active,
      lastLoopAt: last === null ? null : new Date(last).toISOString(),
      // A worker that is not claiming (the testing kit's, between drains) has no loop to stall.
      stalled: status.claiming && (sinceMs === null || sinceMs > stallAfterMs),
    };
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
