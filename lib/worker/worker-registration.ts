import type { Logger } from '@nestjs/common';
import type { JobStore } from '../store/job-store.js';
import { settlesWithin } from '../timers/settles-within.js';
import type { WorkerTimers } from '../timers/worker-timers.js';

/** How often a running worker renews its registration. */
export const REGISTRATION_RENEWAL_MS = 5000;
/** A registration not renewed for this long no longer counts: three renewals missed (a dead process). */
export const REGISTRATION_TTL_MS = 3 * REGISTRATION_RENEWAL_MS;

/**
 * The worker's registration in the store (`registerWorker`): the names it has handlers for, so that
 * stats and health can tell a name nobody runs. Visibility only: claims name their names themselves.
 */
export class WorkerRegistration {
  private names: readonly string[] = [];
  /** The registration on its way, if any: the next tick skips rather than pile up calls. */
  private renewal: Promise<void> | null = null;
  private failing = false;

  constructor(
    private readonly store: JobStore,
    private readonly timers: WorkerTimers,
    private readonly workerId: string,
    private readonly logger: Logger,
  ) {}

  /** Registers now and renews every REGISTRATION_RENEWAL_MS. */
  start(names: readonly string[]): void {
    this.names = names;
    this.renew();
    this.timers.every('registration', REGISTRATION_RENEWAL_MS, () => this.renew());
  }

  /** Stops renewing and removes the registration; a store that does not answer within `timeoutMs` is left. */
  async stop(timeoutMs: number): Promise<void> {
    this.timers.cancel('registration');
    // After the last renewal, so that it cannot register the worker again.
    const unregistered = (this.renewal ?? Promise.resolve()).then(() => this.store.unregisterWorker(this.workerId));
    try {
      await settlesWithin(unregistered, timeoutMs);
    } catch (error) {
      this.logger.warn(
        `Could not unregister worker ${this.workerId}; its registration expires within ${REGISTRATION_TTL_MS} ms: ${(error as Error).message}`,
      );
    }
  }

  private renew(): void {
    if (this.renewal) return;
    const options = { now: this.timers.now(), ttlMs: REGISTRATION_TTL_MS };
    this.renewal = this.store
      .registerWorker({ workerId: this.workerId, names: this.names }, options)
      .then(
        () => {
          this.failing = false;
        },
        (error: unknown) => {
          if (!this.failing) {
            this.logger.warn(
              `Could not register worker ${this.workerId} (its handler names, which health and stats show); retrying every ${REGISTRATION_RENEWAL_MS} ms: ${(error as Error).message}`,
            );
          }
          this.failing = true;
        },
      )
      .finally(() => {
        this.renewal = null;
      });
  }
}
