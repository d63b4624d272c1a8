import type { Logger } from '@nestjs/common';
import type { ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';
import type { ClaimedJob, JobStore, Retention, UnreadableJobReport } from '../store/job-store.js';
import { settlesWithin } from '../timers/settles-within.js';
import type { WorkerTimers } from '../timers/worker-timers.js';
import { retentionOf } from './retention.js';

const MAX_STORE_BACKOFF_MS = 5000;
/**
 * While a backlog lasts, a second claim goes out while the first is on its way, so that the slots the
 * first batch frees are not left idle for a whole round trip; when the queue runs dry, one at a time.
 */
const MAX_CLAIMS_IN_FLIGHT = 2;

/** What the claim loop needs from the worker that owns it. */
export interface ClaimLoopHost {
  /** The worker is running: the loop goes round, claimed jobs start. */
  isClaiming(): boolean;
  /** Nothing may be claimed now (a last-chance job is kept, waits or runs). */
  claimsHeld(): boolean;
  /** Starts the jobs a claim brought back; a promise when some must first go back to the queue. */
  startClaimed(claimed: ClaimedJob[]): void | Promise<void>;
  /** The loop has nothing to do until woken: the worker may be idle. */
  loopIdle(): void;
}

/**
 * The claim loop and its flow control: claims when a claim was requested and slots are free, at most
 * `maximumConcurrency` attempts at once (slots held by running attempts plus those reserved by claims
 * on their way); backs off while the store fails; wakes when a retry comes due. Never throws.
 */
export class ClaimLoop {
  /** Work may be due (a new job, a freed slot, the poll, shutdown): the loop claims once it may. */
  private claimRequested = true;
  /** Claims on their way to the store. */
  private claimsInFlight = 0;
  /** See lastLoopAt. */
  private loopAt: number | null = null;
  /** Resolves the loop's wait for the next change (see wakeClaimLoop). */
  private wake: (() => void) | null = null;
  /** When the last claim was sent. */
  private lastClaimAt = 0;
  private nextDueAt = Number.POSITIVE_INFINITY;
  private storeErrorLogged = false;
  /** Attempts whose outcome is not known yet: what maximumConcurrency caps. */
  private busySlots = 0;
  /** Slots asked for by claims on their way (with busySlots, at most maximumConcurrency). */
  private reservedSlots = 0;
  /** The last claim came back full: more jobs are probably due. */
  private backlog = false;
  /** Doubles while claims fail; 0 once one succeeds. */
  private claimBackoffMs = 0;
  /** A failed claim asks the loop to wait this long (or for a claim request) before the next. */
  private claimRetryAfterMs = 0;
  /** For the jobs a claim fails as unreadable (their retention), made once rather than per claim. */
  private readonly retention: Retention;
  private readonly logUnreadable = (report: UnreadableJobReport) => this.logger.error(report.message);
  /** The names this worker has handlers for: the only ones it claims (see run). */
  private names: readonly string[] = [];

  constructor(
    private readonly store: JobStore,
    private readonly timers: WorkerTimers,
    private readonly options: ResolvedAsyncEndpointsOptions,
    private readonly host: ClaimLoopHost,
    private readonly logger: Logger,
  ) {
    this.retention = retentionOf(options);
  }

  /**
   * When the loop last went round with no claim pending, or a claim last answered: health reports a
   * stall when it gets old (a hung store call shows this way).
   */
  get lastLoopAt(): number | null {
    return this.loopAt;
  }

  /** No claim is requested or on its way. */
  get idle(): boolean {
    return this.claimsInFlight === 0 && !this.claimRequested;
  }

  /**
   * Runs until the host stops claiming, claiming only jobs of `names` (the handlers of this process);
   * the first claim goes out at once.
   */
  run(names: readonly string[]): Promise<void> {
    this.names = names;
    this.claimRequested = true;
    this.nextDueAt = Number.POSITIVE_INFINITY;
    // The poll is the fallback for a wake-up that got lost: a worker that claimed within the last
    // interval anyway needs none (a poll's claim on its way would only delay the next job's).
    this.timers.every('poll', this.options.worker.pollingIntervalMs, () => {
      if (Date.now() - this.lastClaimAt >= this.options.worker.pollingIntervalMs) this.requestClaim();
      else this.wakeClaimLoop();
    });
    return this.loop();
  }

  /** Cancels the loop's timers (once it has stopped going round). */
  cancelTimers(): void {
    this.timers.cancel('poll');
    this.timers.cancel('next-due');
  }

  /** Asks for a claim: a new job, a freed slot, the poll, shutdown. */
  requestClaim(): void {
    this.claimRequested = true;
    this.wakeClaimLoop();
  }

  /** Lets the loop look at its state again (claims only if one was requested). */
  wakeClaimLoop(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** Wakes the loop when a retry becomes due (the earliest one known). */
  scheduleWakeAt(dueAt: number): void {
    if (dueAt >= this.nextDueAt && this.nextDueAt > this.timers.now()) return;
    this.nextDueAt = dueAt;
    this.timers.once('next-due', Math.max(0, dueAt - this.timers.now()), () => {
      this.nextDueAt = Number.POSITIVE_INFINITY;
      this.requestClaim();
    });
  }

  /** An attempt starts: it holds a slot until its outcome is known. */
  takeSlot(): void {
    this.busySlots++;
  }

  /**
   * A slot is free again. It is worth a claim when the last claim came back full (more jobs wait) or
   * when a cap across the deployment (maxConcurrentJobs) may have held jobs back; otherwise every job
   * that became due since has said so (job-available, kept in claimRequested while all slots were busy)
   * and an empty claim per finished job would be Redis work for nothing.
   */
  giveSlotBack(): void {
    this.busySlots--;
    if (this.backlog || this.options.jobManager.maxConcurrentJobs !== null) this.requestClaim();
    else this.wakeClaimLoop();
  }

  private nextWake(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
    });
  }

  /**
   * Claims whenever a claim was requested and slots are free: one claim at a time, a second one while
   * the last came back full (a backlog). Every change of that state wakes the loop.
   */
  private async loop(): Promise<void> {
    const claims = new Set<Promise<void>>();
    while (this.host.isClaiming()) {
      // A claim that never answers (a hung store) shows as a loop that stopped going round.
      if (this.claimsInFlight === 0) this.loopAt = Date.now();
      if (this.claimRetryAfterMs > 0 && this.claimsInFlight === 0) {
        const backoffMs = this.claimRetryAfterMs;
        this.claimRetryAfterMs = 0;
        // A claim request (poll, new job, shutdown) cuts the backoff short; its timer goes with it, so
        // that it cannot keep a closed app's process alive for seconds.
        await settlesWithin(this.nextWake(), backoffMs);
        continue;
      }
      const free = this.host.claimsHeld()
        ? 0
        : this.options.worker.maximumConcurrency - this.busySlots - this.reservedSlots;
      const mayClaim =
        this.claimsInFlight === 0 ||
        (this.backlog && this.claimRetryAfterMs === 0 && this.claimsInFlight < MAX_CLAIMS_IN_FLIGHT);
      if (this.claimRequested && free > 0 && mayClaim) {
        this.claimRequested = false;
        const claim = this.claimBatch(Math.min(free, this.options.worker.batchSize));
        claims.add(claim);
        void claim.finally(() => claims.delete(claim));
        continue;
      }
      this.host.loopIdle();
      await this.nextWake();
    }
    await Promise.allSettled([...claims]);
  }

  /** One claim of up to `limit` jobs; its slots are reserved until its jobs start. Never throws. */
  private async claimBatch(limit: number): Promise<void> {
    this.reservedSlots += limit;
    this.claimsInFlight++;
    this.lastClaimAt = Date.now();
    try {
      // A worker without handlers has nothing to claim: no store call for it.
      const claimed =
        this.names.length === 0
          ? []
          : await this.store.claimDueJobs({
              workerId: this.options.worker.workerId,
              names: this.names,
              limit,
              leaseMs: this.options.jobManager.jobClaimTimeoutMs,
              now: this.timers.now(),
              maxConcurrentJobs: this.options.jobManager.maxConcurrentJobs,
              retention: this.retention,
              onUnreadable: this.logUnreadable,
            });
      if (this.storeErrorLogged) this.logger.log('Job store reachable again; worker resumed');
      this.storeErrorLogged = false;
      this.claimBackoffMs = 0;
      // A full batch means more may be due: claim again before sleeping.
      this.backlog = claimed.length === limit;
      const starting = this.host.startClaimed(claimed);
      if (starting) await starting;
    } catch (error) {
      this.claimFailed(error as Error);
    } finally {
      this.loopAt = Date.now();
      this.reservedSlots -= limit;
      this.claimsInFlight--;
      // A full batch or a failure asks for the next claim; either way the loop looks again (a claim
      // request that came while this claim was on its way is still pending).
      if (this.backlog || this.claimRetryAfterMs > 0) this.claimRequested = true;
      this.wakeClaimLoop();
    }
  }

  private claimFailed(error: Error): void {
    this.backlog = false;
    this.claimBackoffMs = Math.min(MAX_STORE_BACKOFF_MS, Math.max(100, this.claimBackoffMs * 2));
    this.claimRetryAfterMs = this.claimBackoffMs;
    if (!this.storeErrorLogged) {
      this.logger.error(`Claiming jobs failed, retrying with backoff: ${error.message}`);
      this.storeErrorLogged = true;
    }
  }
}
