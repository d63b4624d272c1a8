import type { Logger } from '@nestjs/common';
import type { JobStore } from '../store/job-store.js';
import type { WorkerTimers } from '../timers/worker-timers.js';
import type { RunningJob } from './running-job.js';

/**
 * Renews the leases of every attempt this worker runs in one batched store call, and ends the attempts
 * whose lease the store took back (lease-lost) or whose job a client asked to cancel (the answer carries
 * both). Runs at least every second, so that a cancellation reaches the handler quickly.
 */
export class LeaseKeeper {
  /** A renewal is on its way: the next tick skips rather than pile up calls. */
  private renewing = false;

  constructor(
    private readonly store: JobStore,
    private readonly timers: WorkerTimers,
    private readonly leaseMs: number,
    private readonly running: ReadonlyMap<string, RunningJob>,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timers.every('lease-renewal', Math.max(50, Math.min(1000, Math.floor(this.leaseMs / 3))), () => this.renew());
  }

  stop(): void {
    this.timers.cancel('lease-renewal');
  }

  private async renew(): Promise<void> {
    if (this.running.size === 0 || this.renewing) return;
    this.renewing = true;
    // The answer is about these attempts, not about later ones for the same jobs.
    const renewed = new Map(this.running);
    const leases = [...renewed.values()].map((entry) => entry.lease);
    try {
      const options = { now: this.timers.now(), leaseMs: this.leaseMs };
      const { lost, cancelRequested } = await this.store.renewLeases(leases, options);
      for (const id of lost) renewed.get(id)?.interrupt({ kind: 'lease-lost' });
      for (const id of cancelRequested) renewed.get(id)?.interrupt({ kind: 'canceled' });
    } catch (error) {
      this.logger.warn(`Lease renewal failed; will retry: ${(error as Error).message}`);
    } finally {
      this.renewing = false;
    }
  }
}
