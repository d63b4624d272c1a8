import { type BeforeApplicationShutdown, Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { ASYNC_ENDPOINTS_OPTIONS } from '../async-endpoints.module-definition.js';
import { HandlerRegistry } from '../handlers/handler-registry.js';
import type { ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';
import { JobStore, type RecoveryReport } from '../store/job-store.js';
import { retentionOf } from './retention.js';
import { WorkerTimers } from '../timers/worker-timers.js';
import { libraryLogger } from '../observability/library-logger.js';

/**
 * Every `recoveryCheckIntervalSeconds`, takes back jobs from dead or hung workers (expired lease,
 * or InProgress past `recovery.jobTimeoutMinutes`). A lock in the store makes one sweep per period
 * do the work across the whole deployment.
 */
@Injectable()
export class RecoverySweeper implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = libraryLogger();
  private sweeping = false;

  constructor(
    private readonly store: JobStore,
    private readonly timers: WorkerTimers,
    private readonly handlers: HandlerRegistry,
    @Inject(ASYNC_ENDPOINTS_OPTIONS) private readonly options: ResolvedAsyncEndpointsOptions,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.options.recovery.enableDistributedJobRecovery) return;
    this.warnAboutShortHardCap();
    this.timers.every('recovery', this.options.recovery.recoveryCheckIntervalSeconds * 1000, () => this.sweep());
  }

  beforeApplicationShutdown(): void {
    this.timers.cancel('recovery');
  }

  /** Recovery would take back attempts that are still within their own time budget. */
  private warnAboutShortHardCap(): void {
    const capMs = this.options.recovery.jobTimeoutMinutes * 60_000;
    const budgets = [
      { who: 'worker.jobTimeoutMinutes', ms: this.options.worker.jobTimeoutMinutes * 60_000 },
      ...this.handlers
        .names()
        .map((name) => ({ who: `@AsyncHandler('${name}') timeoutMs`, ms: this.handlers.get(name)!.metadata.timeoutMs }))
        .filter((budget): budget is { who: string; ms: number } => budget.ms !== undefined),
    ];
    for (const budget of budgets.filter((b) => b.ms >= capMs)) {
      this.logger.warn(
        `recovery.jobTimeoutMinutes (${this.options.recovery.jobTimeoutMinutes}) is not longer than ${budget.who} ` +
          `(${budget.ms / 60_000} min): recovery may take back attempts that are still running within their budget. ` +
          'Make recovery.jobTimeoutMinutes the larger one.',
      );
    }
  }

  /** One sweep; null when another process holds this period's lock or a sweep is running. */
  async sweep(): Promise<RecoveryReport | null> {
    if (this.sweeping) return null;
    this.sweeping = true;
    const { recovery } = this.options;
    try {
      const report = await this.store.recoverJobs({
        now: Date.now(),
        maxInProgressMs: recovery.jobTimeoutMinutes * 60_000,
        maxRecoveries: recovery.maximumRetries,
        // A little under the period, so the next period's first sweep finds the lock free.
        lockMs: Math.max(50, Math.floor(recovery.recoveryCheckIntervalSeconds * 1000 * 0.8)),
        retention: retentionOf(this.options),
      });
      if (
        report &&
        report.requeued.length + report.exhausted.length + report.canceled.length + report.removedEntries > 0
      ) {
        this.logger.warn(
          `Recovery: ${report.requeued.length} job(s) requeued, ${report.exhausted.length} failed with JOB_RECOVERY_EXHAUSTED, ` +
            `${report.canceled.length} canceled, ${report.removedEntries} broken queue entr(ies) removed`,
        );
      }
      return report;
    } catch (error) {
      this.logger.warn(
        `Recovery sweep failed; next one in ${recovery.recoveryCheckIntervalSeconds} s: ${(error as Error).message}`,
      );
      return null;
    } finally {
      this.sweeping = false;
    }
  }
}
