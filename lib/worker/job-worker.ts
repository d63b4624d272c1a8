import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { context as otelContext, isSpanContextValid, trace } from '@opentelemetry/api';
import { instanceToPlain, plainToInstance } from 'class-transformer';
import { ASYNC_ENDPOINTS_OPTIONS } from '../async-endpoints.module-definition.js';
import { capturedHeaders, type AsyncContext, type CapturedHeaders } from '../handlers/async-context.js';
import { NonRetryableError } from '../errors/non-retryable.error.js';
import { HandlerRegistry, type RegisteredHandler } from '../handlers/handler-registry.js';
import {
  attemptOf,
  JobErrorCode,
  retryDelayMs,
  toJobError,
  type Job,
  type JobError,
  type JsonValue,
} from '../job/index.js';
import type { ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';
import { DeadlineQueue } from '../deadline-queue.js';
import { JobStore, type ClaimedJob, type Lease, type Retention, type UnreadableJobReport } from '../store/job-store.js';
import { Telemetry } from '../observability/telemetry.js';
import { JobLogger } from './job-logger.js';
import { retentionOf } from './retention.js';
import { WorkerTimers } from './worker-timers.js';

/** How an attempt ended, from the worker's point of view. */
type AttemptOutcome =
  | { kind: 'returned'; value: unknown }
  | { kind: 'threw'; error: unknown }
  | { kind: 'timed-out' }
  | { kind: 'canceled' }
  /** The store took the lease back (recovery, expiry): someone else owns the job now. */
  | { kind: 'lease-lost' }
  /** Shutdown grace period over: hand the job back. */
  | { kind: 'released' };

interface RunningJob {
  job: Job;
  lease: Lease;
  controller: AbortController;
  /** Ends the attempt now with the given outcome (first call wins). */
  interrupt(outcome: AttemptOutcome): void;
  /** Gives the attempt's concurrency slot back (once): as soon as its outcome is known. */
  freeSlot(): void;
  /** Settles once the attempt's outcome is written to the store. */
  done: Promise<void>;
}

const MAX_STORE_BACKOFF_MS = 5000;
/**
 * While a backlog lasts, a second claim goes out while the first is on its way, so that the slots the
 * first batch frees are not left idle for a whole round trip; when the queue runs dry, one at a time.
 */
const MAX_CLAIMS_IN_FLIGHT = 2;

/**
 * Claims due jobs and runs their handlers: at most `maximumConcurrency` at once, each under a
 * lease renewed in one batched call, each transition fenced by the lease token. Wakes at once on
 * new work; `pollingIntervalMs` is only the fallback.
 */
@Injectable()
export class JobWorker implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('AsyncEndpoints');
  private readonly running = new Map<string, RunningJob>();
  private readonly leaseMs: number;
  private state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle';
  /** Work may be due (a new job, a freed slot, the poll): the loop claims once it may. */
  private wakeRequested = true;
  /** Resolves the claim loop's wait for the next change (see nudge). */
  private nudged: (() => void) | null = null;
  /** Claims on their way to the store. */
  private claimsInFlight = 0;
  /** When the last claim was sent. */
  private lastClaimAt = 0;
  private loop: Promise<void> = Promise.resolve();
  private unsubscribe: () => void = () => undefined;
  private nextDueAt = Number.POSITIVE_INFINITY;
  private storeErrorLogged = false;
  private renewing = false;
  /** Attempts whose outcome is not known yet: what maximumConcurrency caps. */
  private busySlots = 0;
  /** Slots asked for by claims on their way (with busySlots, at most maximumConcurrency). */
  private reservedSlots = 0;
  /** The last claim came back full: more jobs are probably due. */
  private backlog = false;
  /** Doubles while claims fail; 0 once one succeeds. */
  private claimBackoffMs = 0;
  /** A failed claim asks the loop to wait this long (or for a signal) before the next. */
  private claimRetryAfterMs = 0;
  /** A claim on its way kept a last-chance job (see loneJob): no other claim may keep one. */
  private loneClaimed = false;
  /** Per timeout (handlers may set their own): the running attempts' time budgets. */
  private readonly timeBudgets = new Map<number, DeadlineQueue>();
  /**
   * A job taken back `recovery.maximumRetries` times already may be what killed its earlier workers: it
   * runs alone, so that if it kills this process too, only it is failed with JOB_RECOVERY_EXHAUSTED,
   * not the jobs that happened to run beside it. Set while it waits for the other handlers to finish
   * and while it runs; nothing is claimed meanwhile.
   */
  private loneJob: { entry: RunningJob; waiting: boolean; admit: () => void } | null = null;
  /**
   * When the claim loop last went round with no claim pending, or a claim last answered: the health
   * indicator reports a stall when it gets old (a hung store call shows this way).
   */
  lastLoopAt: number | null = null;
  /** Callers of whenIdle, told once nothing is claimed, wanted or running. */
  private idleWaiters: (() => void)[] = [];
  /** For the jobs a claim fails as unreadable (their retention), made once rather than per claim. */
  private readonly retention: Retention;
  private readonly logUnreadable = (report: UnreadableJobReport) => this.logger.error(report.message);

  constructor(
    private readonly store: JobStore,
    private readonly handlers: HandlerRegistry,
    private readonly timers: WorkerTimers,
    private readonly telemetry: Telemetry,
    @Inject(ASYNC_ENDPOINTS_OPTIONS) private readonly options: ResolvedAsyncEndpointsOptions,
  ) {
    this.leaseMs = options.jobManager.jobClaimTimeoutMs;
    this.retention = retentionOf(options);
  }

  get enabled(): boolean {
    return this.options.worker.enabled;
  }

  get workerId(): string {
    return this.options.worker.workerId;
  }

  /** The claim loop is meant to be going round (not before start, nor once stopped, nor between drains in tests). */
  get claiming(): boolean {
    return this.state === 'running';
  }

  /** Handlers running now. */
  get activeCount(): number {
    return this.running.size;
  }

  onApplicationBootstrap(): void {
    if (!this.enabled || this.state !== 'idle') return;
    this.startClaiming();
    this.logger.log(
      `Worker ${this.workerId} started: concurrency ${this.options.worker.maximumConcurrency}, batch ${this.options.worker.batchSize}, store ${this.store.type}`,
    );
  }

  /**
   * Starts claiming (again, after stop: the testing kit runs the worker only while a test drains).
   * The first claim goes out at once.
   */
  startClaiming(): void {
    if (this.state === 'running' || this.state === 'stopping') return;
    this.state = 'running';
    this.wakeRequested = true;
    this.nextDueAt = Number.POSITIVE_INFINITY;
    this.unsubscribe = this.store.subscribe((event) => {
      if (event.type === 'job-available') {
        if (event.dueAt !== undefined && event.dueAt > this.timers.now()) this.scheduleWakeAt(event.dueAt);
        else this.signal();
      } else if (event.type === 'cancel-requested') {
        this.running.get(event.jobId)?.interrupt({ kind: 'canceled' });
      }
    }, ['job-available', 'cancel-requested']);
    // The poll is the fallback for a wake-up that got lost: a worker that claimed within the last
    // interval anyway needs none (a poll's claim on its way would only delay the next job's).
    this.timers.every('poll', this.options.worker.pollingIntervalMs, () => {
      if (Date.now() - this.lastClaimAt >= this.options.worker.pollingIntervalMs) this.signal();
      else this.nudge();
    });
    // Renewal also carries cancellation, so it runs at least every second.
    this.timers.every('lease-renewal', Math.max(50, Math.min(1000, Math.floor(this.leaseMs / 3))), () =>
      this.renewLeases(),
    );
    this.loop = this.claimLoop();
  }

  beforeApplicationShutdown(): Promise<void> {
    return this.stop();
  }

  /**
   * Stop claiming; let running handlers finish for `shutdownTimeoutMs`; then abort their signals
   * and release their jobs to the queue (not counted as failed attempts).
   */
  async stop(): Promise<void> {
    if (this.state !== 'running') return;
    this.state = 'stopping';
    // A job waiting to run alone has not started: it goes back to the queue at once.
    if (this.loneJob?.waiting) this.loneJob.entry.interrupt({ kind: 'released' });
    this.signal();
    // A claim that never answers (a hung custom store) must not hold the shutdown forever.
    if (!(await settlesWithin(this.loop, this.options.worker.shutdownTimeoutMs))) {
      this.logger.warn('The claim loop did not stop within shutdownTimeoutMs (a store call hangs); shutting down anyway');
    }
    this.timers.cancel('poll');
    this.timers.cancel('next-due');
    const inFlight = [...this.running.values()];
    if (inFlight.length > 0) {
      this.logger.log(`Shutting down: waiting up to ${this.options.worker.shutdownTimeoutMs} ms for ${inFlight.length} running job(s)`);
      const drained = await settlesWithin(
        Promise.allSettled(inFlight.map((entry) => entry.done)),
        this.options.worker.shutdownTimeoutMs,
      );
      if (!drained) {
        const left = [...this.running.values()];
        this.logger.warn(`Shutdown grace period over: releasing ${left.length} job(s) back to the queue`);
        for (const entry of left) entry.interrupt({ kind: 'released' });
        await Promise.allSettled(left.map((entry) => entry.done));
      }
    }
    this.timers.cancel('lease-renewal');
    this.unsubscribe();
    this.state = 'stopped';
  }

  /**
   * Settles once no claim is wanted or on its way and no attempt runs or writes its outcome: what the
   * testing kit waits for. Jobs not due yet (retries) may still wait in the store.
   */
  whenIdle(): Promise<void> {
    return new Promise((resolve) => {
      this.idleWaiters.push(resolve);
      this.notifyIfIdle();
    });
  }

  private notifyIfIdle(): void {
    if (this.idleWaiters.length === 0 || this.running.size > 0 || this.claimsInFlight > 0 || this.wakeRequested) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Asks for a claim: a new job, a freed slot, the poll, shutdown. */
  private signal(): void {
    this.wakeRequested = true;
    this.nudge();
  }

  /**
   * A slot is free again. It is worth a claim when the last claim came back full (more jobs wait) or
   * when a cap across the deployment (maxConcurrentJobs) may have held jobs back; otherwise every job
   * that became due since has said so (job-available, kept in wakeRequested while all slots were busy)
   * and an empty claim per finished job would be Redis work for nothing.
   */
  private slotFreed(): void {
    if (this.backlog || this.options.jobManager.maxConcurrentJobs !== null) this.signal();
    else this.nudge();
  }

  /** The time budgets of attempts with this timeout, on one timer (one per distinct timeout). */
  private timeBudget(timeoutMs: number): DeadlineQueue {
    let budgets = this.timeBudgets.get(timeoutMs);
    if (!budgets) this.timeBudgets.set(timeoutMs, (budgets = new DeadlineQueue(timeoutMs)));
    return budgets;
  }

  /** Lets the claim loop look at its state again. */
  private nudge(): void {
    const nudged = this.nudged;
    this.nudged = null;
    nudged?.();
  }

  private nextNudge(): Promise<void> {
    return new Promise((resolve) => {
      this.nudged = resolve;
    });
  }

  /** Wakes the loop when a retry becomes due (the earliest one known). */
  private scheduleWakeAt(dueAt: number): void {
    if (dueAt >= this.nextDueAt && this.nextDueAt > this.timers.now()) return;
    this.nextDueAt = dueAt;
    this.timers.once('next-due', Math.max(0, dueAt - this.timers.now()), () => {
      this.nextDueAt = Number.POSITIVE_INFINITY;
      this.signal();
    });
  }

  /**
   * Claims whenever a claim was asked for (signal) and slots are free: one claim at a time, a second
   * one while the last came back full (a backlog). Every change of that state nudges the loop.
   */
  private async claimLoop(): Promise<void> {
    const claims = new Set<Promise<void>>();
    while (this.state === 'running') {
      // A claim that never answers (a hung store) shows as a loop that stopped going round.
      if (this.claimsInFlight === 0) this.lastLoopAt = Date.now();
      if (this.claimRetryAfterMs > 0 && this.claimsInFlight === 0) {
        const backoffMs = this.claimRetryAfterMs;
        this.claimRetryAfterMs = 0;
        // A signal (poll, new job, shutdown) cuts the backoff short; its timer goes with it, so
        // that it cannot keep a closed app's process alive for seconds.
        await settlesWithin(this.nextNudge(), backoffMs);
        continue;
      }
      const free =
        this.loneJob || this.loneClaimed
          ? 0
          : this.options.worker.maximumConcurrency - this.busySlots - this.reservedSlots;
      const mayClaim =
        this.claimsInFlight === 0 ||
        (this.backlog && this.claimRetryAfterMs === 0 && this.claimsInFlight < MAX_CLAIMS_IN_FLIGHT);
      if (this.wakeRequested && free > 0 && mayClaim) {
        this.wakeRequested = false;
        const claim = this.claimBatch(Math.min(free, this.options.worker.batchSize));
        claims.add(claim);
        void claim.finally(() => claims.delete(claim));
        continue;
      }
      this.notifyIfIdle();
      await this.nextNudge();
    }
    await Promise.allSettled([...claims]);
  }

  /** One claim of up to `limit` jobs; its slots are reserved until its jobs start. Never throws. */
  private async claimBatch(limit: number): Promise<void> {
    this.reservedSlots += limit;
    this.claimsInFlight++;
    this.lastClaimAt = Date.now();
    try {
      const claimed = await this.store.claimDueJobs({
        workerId: this.workerId,
        limit,
        leaseMs: this.leaseMs,
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
      const kept = this.oneLastChanceAtMost(claimed);
      const toStart = Array.isArray(kept) ? kept : await kept;
      for (const claim of toStart) this.start(claim);
      // The lone job kept here has started (loneJob is set) or was handed back at shutdown.
      if (toStart.some((claim) => this.isLastChance(claim.job))) this.loneClaimed = false;
    } catch (error) {
      this.backlog = false;
      this.claimBackoffMs = Math.min(MAX_STORE_BACKOFF_MS, Math.max(100, this.claimBackoffMs * 2));
      this.claimRetryAfterMs = this.claimBackoffMs;
      if (!this.storeErrorLogged) {
        this.logger.error(`Claiming jobs failed, retrying with backoff: ${(error as Error).message}`);
        this.storeErrorLogged = true;
      }
    } finally {
      this.lastLoopAt = Date.now();
      this.reservedSlots -= limit;
      this.claimsInFlight--;
      // A full batch or a failure asks for the next claim; either way the loop looks again (a signal
      // that came while this claim was on its way is still pending).
      if (this.backlog || this.claimRetryAfterMs > 0) this.wakeRequested = true;
      this.nudge();
    }
  }

  private start({ job, lease }: ClaimedJob): void {
    if (this.state !== 'running') {
      // Claimed while shutdown began: hand it straight back.
      void this.release(lease, job);
      return;
    }
    // Its signal is built when first read (a handler that never looks at it costs none).
    const controller = new AbortController();
    let interrupted = false;
    let settle: (outcome: AttemptOutcome) => void = () => undefined;
    const outcome = new Promise<AttemptOutcome>((resolve) => {
      settle = resolve;
    });
    let holdsSlot = true;
    this.busySlots++;
    const entry: RunningJob = {
      job,
      lease,
      controller,
      interrupt: (interruption) => {
        if (!interrupted) {
          interrupted = true;
          controller.abort(abortReason(interruption, job));
        }
        settle(interruption);
      },
      freeSlot: () => {
        if (!holdsSlot) return;
        holdsSlot = false;
        this.busySlots--;
        this.slotFreed();
      },
      done: Promise.resolve(),
    };
    // Handed out again while an attempt still runs here: recovery took the job back from this very
    // worker (a hung handler), so that attempt's lease is gone. Abort it rather than let it run on
    // unseen, untimed and uncounted behind the new one.
    this.running.get(job.id)?.interrupt({ kind: 'lease-lost' });
    this.running.set(job.id, entry);
    entry.done = this.attempt(entry, outcome, settle).finally(() => {
      entry.freeSlot();
      if (this.running.get(job.id) === entry) this.running.delete(job.id);
      this.notifyIfIdle();
      if (this.loneJob?.entry === entry) {
        // Nothing was claimed while it ran: what became due meanwhile is claimed now.
        this.loneJob = null;
        this.signal();
      }
      this.admitLoneJob();
    });
  }

  /** Taken back as often as recovery allows: one more take-back fails it (see loneJob). */
  private isLastChance(job: Job): boolean {
    return job.recoveryCount > 0 && job.recoveryCount >= this.options.recovery.maximumRetries;
  }

  /**
   * Keeps the first last-chance job of a batch, last, so that it sees the others running and waits for
   * them; any other last-chance job (all of them, when another claim keeps one or a lone job is here
   * already) goes back to the queue before anything runs.
   */
  private oneLastChanceAtMost(claimed: ClaimedJob[]): ClaimedJob[] | Promise<ClaimedJob[]> {
    const lastChance = claimed.filter((claim) => this.isLastChance(claim.job));
    // Nothing to wait for in the usual case: the jobs start in this very turn.
    if (lastChance.length === 0) return claimed;
    return this.keepOneLastChance(claimed, lastChance);
  }

  private async keepOneLastChance(claimed: ClaimedJob[], lastChance: ClaimedJob[]): Promise<ClaimedJob[]> {
    // Decided before anything is awaited, so that a claim answered meanwhile keeps none (claimBatch
    // clears the flag once the lone job has started, and loneJob takes over).
    const lone = this.loneJob || this.loneClaimed ? undefined : lastChance[0];
    if (lone) this.loneClaimed = true;
    await Promise.all(lastChance.filter((claim) => claim !== lone).map((claim) => this.release(claim.lease, claim.job)));
    const others = claimed.filter((claim) => !this.isLastChance(claim.job));
    return lone ? [...others, lone] : others;
  }

  /** Resolves true once no other attempt is left in this worker, false if interrupted first. */
  private waitToRunAlone(entry: RunningJob, outcome: Promise<AttemptOutcome>): Promise<boolean> {
    const admitted = new Promise<boolean>((resolve) => {
      this.loneJob = { entry, waiting: true, admit: () => resolve(true) };
    });
    const others = this.running.size - 1;
    if (others > 0) {
      new JobLogger(entry.job).warn(
        `Taken back ${entry.job.recoveryCount} time(s) already: it runs alone, after the ${others} job(s) running here`,
      );
    }
    this.admitLoneJob();
    return Promise.race([admitted, outcome.then(() => false)]);
  }

  private admitLoneJob(): void {
    const lone = this.loneJob;
    if (!lone?.waiting || this.state !== 'running') return;
    if (this.running.size !== 1 || this.running.get(lone.entry.job.id) !== lone.entry) return;
    lone.waiting = false;
    lone.admit();
  }

  private async attempt(
    entry: RunningJob,
    outcome: Promise<AttemptOutcome>,
    settle: (outcome: AttemptOutcome) => void,
  ): Promise<void> {
    const { job, lease, controller } = entry;
    const handler = this.handlers.get(job.name);
    const logger = new JobLogger(job);
    if (!handler) {
      await this.finish(lease, job, {
        kind: 'threw',
        error: new NonRetryableError(
          `No @AsyncHandler('${job.name}') is registered in worker ${this.workerId}; add the provider to a module of this process.`,
          JobErrorCode.HandlerNotFound,
        ),
      });
      return;
    }
    if (this.isLastChance(job) && !(await this.waitToRunAlone(entry, outcome))) {
      // Canceled, lease lost or released at shutdown before it could start.
      entry.freeSlot();
      await this.finish(lease, job, await outcome, handler);
      return;
    }
    const timeoutMs = handler.metadata.timeoutMs ?? this.options.worker.jobTimeoutMinutes * 60_000;
    const deadline = this.timeBudget(timeoutMs).add(() => entry.interrupt({ kind: 'timed-out' }));
    const span = this.telemetry.startAttemptSpan(job, attemptOf(job));
    const startedAt = performance.now();
    // The handler runs inside the attempt span, so its own spans are children of it. Without a tracing
    // SDK the span is an invalid no-op that no child could use: the handler runs as it is (~10 µs less
    // between claim and handler in a worker that was idle).
    const run = () => this.invoke(handler, job, lease, controller, logger);
    (span.isRecording() || isSpanContextValid(span.spanContext())
      ? otelContext.with(trace.setSpan(otelContext.active(), span), run)
      : run()
    ).then(
        (value) => settle({ kind: 'returned', value }),
        (error: unknown) => settle({ kind: 'threw', error }),
      );
    const result = await outcome;
    deadline.settle();
    this.telemetry.processingDuration.record(
      (performance.now() - startedAt) / 1000,
      this.telemetry.cachedAttributes(`job.outcome:${result.kind}:${job.name}`, () =>
        this.telemetry.attributes({ 'job.name': job.name, 'job.outcome': result.kind }),
      ),
    );
    Telemetry.endSpan(span, result.kind === 'returned' ? undefined : attemptError(result, this.options.http.exposeErrorDetails));
    // The next job may start while this outcome is written (the lease still covers this one): the slot
    // would otherwise sit idle for a round trip per job, half of a no-op job's cycle.
    entry.freeSlot();
    if (result.kind === 'timed-out') logger.warn(`Attempt ${attemptOf(job)} timed out after ${timeoutMs} ms`);
    await this.finish(lease, job, result, handler, logger);
  }

  private async invoke(
    handler: RegisteredHandler,
    job: Job,
    lease: Lease,
    controller: AbortController,
    logger: JobLogger,
  ): Promise<unknown> {
    // A singleton handler (the usual case) runs in this very turn; others are resolved per job.
    const instance = this.handlers.sharedInstance(handler) ?? (await this.handlers.instanceFor(handler, job));
    const { requestType } = handler.metadata;
    // Headers and parameters are copied when first read: most handlers never look at them.
    let headers: CapturedHeaders | undefined;
    let routeParams: AsyncContext['routeParams'] | undefined;
    let queryParams: AsyncContext['queryParams'] | undefined;
    const context: AsyncContext = {
      request: requestType ? plainToInstance(requestType, job.payload) : job.payload,
      get headers() {
        return (headers ??= capturedHeaders(job.headers));
      },
      get routeParams() {
        return (routeParams ??= Object.freeze({ ...job.routeParams }));
      },
      get queryParams() {
        return (queryParams ??= Object.freeze({ ...job.queryParams }));
      },
      job: {
        id: job.id,
        name: job.name,
        attempt: attemptOf(job),
        maxRetries: job.maxRetries,
        createdAt: new Date(job.createdAt),
      },
      get signal() {
        return controller.signal;
      },
      reportProgress: async (progress) => {
        if (!controller.signal.aborted) await this.store.reportProgress(lease, toJson(progress), this.timers.now());
      },
      logger,
    };
    return instance.handle(context);
  }

  /** Writes the attempt's outcome, fenced by the lease. */
  private async finish(
    lease: Lease,
    job: Job,
    outcome: AttemptOutcome,
    handler?: RegisteredHandler,
    logger = new JobLogger(job),
  ): Promise<void> {
    const retention = retentionOf(this.options);
    try {
      switch (outcome.kind) {
        case 'lease-lost':
          logger.warn('Lease lost (the job was taken back by recovery or expired); this attempt is abandoned');
          return;
        case 'released':
          await this.release(lease, job);
          return;
        case 'returned': {
          let result: JsonValue | null;
          try {
            result = toJson(outcome.value);
          } catch (error) {
            return this.fail(lease, job, toJobError(error, this.options.http.exposeErrorDetails), false, handler);
          }
          const written = await this.store.completeJob(lease, result, { now: this.timers.now(), retention });
          if (written === 'lease-lost') logger.warn('Completed, but the lease was lost: the result is discarded');
          return;
        }
        case 'timed-out':
          return this.fail(
            lease,
            job,
            {
              code: JobErrorCode.Timeout,
              message: `The attempt exceeded its time budget of ${handler?.metadata.timeoutMs ?? this.options.worker.jobTimeoutMinutes * 60_000} ms (worker.jobTimeoutMinutes or the handler's timeoutMs).`,
            },
            true,
            handler,
          );
        case 'canceled':
          return this.fail(lease, job, { code: JobErrorCode.Canceled, message: 'The job was canceled.' }, false, handler);
        case 'threw':
          return this.fail(
            lease,
            job,
            toJobError(outcome.error, this.options.http.exposeErrorDetails),
            !(outcome.error instanceof NonRetryableError),
            handler,
          );
      }
    } catch (error) {
      // The lease will expire and recovery will take the job back: delivery stays at least once.
      logger.error(`Could not record the attempt's outcome (${outcome.kind}): ${(error as Error).message}`);
    }
  }

  private async fail(
    lease: Lease,
    job: Job,
    error: JobError,
    retryable: boolean,
    handler: RegisteredHandler | undefined,
  ): Promise<void> {
    const now = this.timers.now();
    const canRetry = retryable && job.retryCount < job.maxRetries;
    const retryAt = canRetry
      ? now +
        retryDelayMs(job.retryCount + 1, {
          retryDelayBaseSeconds: handler?.metadata.retryDelayBaseSeconds ?? this.options.jobManager.retryDelayBaseSeconds,
          maxRetryDelaySeconds: this.options.jobManager.maxRetryDelaySeconds,
        })
      : null;
    const outcome = await this.store.failJob(lease, error, { now, retryAt, retention: retentionOf(this.options) });
    const logger = new JobLogger(job);
    if (outcome === 'scheduled') {
      logger.warn(`Attempt ${attemptOf(job)} failed (${error.code}); retry ${job.retryCount + 1} of ${job.maxRetries} at ${new Date(retryAt!).toISOString()}`);
      this.scheduleWakeAt(retryAt!);
    } else if (outcome === 'failed') {
      logger.error(`Failed (${error.code}): ${error.message}`);
    } else if (outcome === 'canceled') {
      logger.log('Canceled');
    }
  }

  private async release(lease: Lease, job: Job): Promise<void> {
    try {
      await this.store.releaseJob(lease, { now: this.timers.now(), retention: retentionOf(this.options) });
    } catch (error) {
      new JobLogger(job).error(`Could not release the job; recovery will take it back: ${(error as Error).message}`);
    }
  }

  private async renewLeases(): Promise<void> {
    if (this.running.size === 0 || this.renewing) return;
    this.renewing = true;
    // The answer is about these attempts, not about later ones for the same jobs.
    const renewed = new Map(this.running);
    const leases = [...renewed.values()].map((entry) => entry.lease);
    try {
      const { lost, cancelRequested } = await this.store.renewLeases(leases, { now: this.timers.now(), leaseMs: this.leaseMs });
      for (const id of lost) renewed.get(id)?.interrupt({ kind: 'lease-lost' });
      for (const id of cancelRequested) renewed.get(id)?.interrupt({ kind: 'canceled' });
    } catch (error) {
      this.logger.warn(`Lease renewal failed; will retry: ${(error as Error).message}`);
    } finally {
      this.renewing = false;
    }
  }
}

/** What the attempt span records for an attempt that did not return. */
function attemptError(outcome: AttemptOutcome, exposeDetails: boolean): { code: string; message: string } {
  if (outcome.kind === 'threw') return toJobError(outcome.error, exposeDetails);
  const codes: Partial<Record<AttemptOutcome['kind'], string>> = {
    'timed-out': JobErrorCode.Timeout,
    canceled: JobErrorCode.Canceled,
  };
  return { code: codes[outcome.kind] ?? outcome.kind.toUpperCase().replace('-', '_'), message: `Attempt ended: ${outcome.kind}` };
}

function abortReason(outcome: AttemptOutcome, job: Job): Error {
  const reasons: Partial<Record<AttemptOutcome['kind'], string>> = {
    'timed-out': `Job ${job.id} timed out`,
    canceled: `Job ${job.id} was canceled`,
    'lease-lost': `Job ${job.id} was taken back from this worker`,
    released: `Job ${job.id} was released at shutdown`,
  };
  const error = new Error(reasons[outcome.kind] ?? `Job ${job.id} was aborted`);
  error.name = 'AbortError';
  return error;
}

/** Handlers may return class instances or nothing; the store keeps plain JSON. */
function toJson(value: unknown): JsonValue | null {
  if (value === undefined || value === null) return null;
  const plain = typeof value === 'object' ? instanceToPlain(value) : value;
  return JSON.parse(JSON.stringify(plain)) as JsonValue;
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const settled = await Promise.race([promise.then(() => true), timeout]);
  clearTimeout(timer);
  return settled;
}
