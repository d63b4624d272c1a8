import { type BeforeApplicationShutdown, Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { ASYNC_ENDPOINTS_OPTIONS } from '../async-endpoints.module-definition.js';
import { HandlerRegistry } from '../handlers/handler-registry.js';
import type { ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';
import { JobStore, type ClaimedJob } from '../store/job-store.js';
import { Telemetry } from '../observability/telemetry.js';
import { settlesWithin } from '../timers/settles-within.js';
import { WorkerTimers } from '../timers/worker-timers.js';
import { AttemptRunner } from './attempt-runner.js';
import { ClaimLoop } from './claim-loop.js';
import { LastChance } from './last-chance.js';
import { LeaseKeeper } from './lease-keeper.js';
import { abortReason, type AttemptOutcome, type RunningJob } from './running-job.js';
import { WorkerRegistration } from './worker-registration.js';
import type { WorkerStatus } from './worker-status.js';
import { libraryLogger } from '../observability/library-logger.js';

/**
 * Claims due jobs and runs their handlers: at most `maximumConcurrency` at once, each under a
 * lease renewed in one batched call, each transition fenced by the lease token. Wakes at once on
 * new work; `pollingIntervalMs` is only the fallback. This provider owns the lifecycle and the
 * running attempts; the claim loop, the attempt runner, the lease keeper and the last-chance policy
 * do the work.
 */
@Injectable()
export class JobWorker implements OnApplicationBootstrap, BeforeApplicationShutdown {
  /** Read by health and telemetry. */
  readonly status: WorkerStatus;
  private readonly logger = libraryLogger();
  private readonly running = new Map<string, RunningJob>();
  private state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle';
  private loop: Promise<void> = Promise.resolve();
  private unsubscribe: () => void = () => undefined;
  /** Callers of whenIdle, told once nothing is claimed, wanted or running. */
  private idleWaiters: (() => void)[] = [];
  private readonly claims: ClaimLoop;
  private readonly attempts: AttemptRunner;
  private readonly leases: LeaseKeeper;
  private readonly lastChance: LastChance;
  private readonly registration: WorkerRegistration;
  /** The names this process has handlers for: the only jobs it claims (read at start). */
  private handlerNames: ReadonlySet<string> = new Set();

  constructor(
    private readonly store: JobStore,
    private readonly handlers: HandlerRegistry,
    private readonly timers: WorkerTimers,
    telemetry: Telemetry,
    @Inject(ASYNC_ENDPOINTS_OPTIONS) private readonly options: ResolvedAsyncEndpointsOptions,
  ) {
    const isClaiming = () => this.claiming;
    const host = {
      isClaiming,
      claimsHeld: () => this.lastChance.holdsClaims,
      startClaimed: (claimed: ClaimedJob[]) => this.startClaimed(claimed),
      loopIdle: () => this.notifyIfIdle(),
    };
    this.claims = new ClaimLoop(store, timers, options, host, this.logger);
    this.lastChance = new LastChance(options.recovery.maximumRetries, this.running, isClaiming, (lease, job) =>
      this.attempts.release(lease, job),
    );
    this.attempts = new AttemptRunner(store, handlers, timers, telemetry, options, this.lastChance, (retryAt) =>
      this.claims.scheduleWakeAt(retryAt),
    );
    this.leases = new LeaseKeeper(store, timers, options.jobManager.jobClaimTimeoutMs, this.running, this.logger);
    this.registration = new WorkerRegistration(store, timers, options.worker.workerId, this.logger);
    this.status = workerStatus(options, this.running, this.claims, isClaiming);
  }

  /** The claim loop is meant to be going round (not before start, nor once stopped, nor between drains in tests). */
  private get claiming(): boolean {
    return this.state === 'running';
  }

  onApplicationBootstrap(): void {
    if (!this.options.worker.enabled || this.state !== 'idle') return;
    this.startClaiming();
    const { workerId, maximumConcurrency, batchSize } = this.options.worker;
    const names = this.handlerNames.size > 0 ? [...this.handlerNames].join(', ') : 'none (it claims no job)';
    this.logger.log(
      `Worker ${workerId} started: handlers ${names}; concurrency ${maximumConcurrency}, batch ${batchSize}, store ${this.store.type}`,
    );
  }

  /**
   * Starts claiming (again, after stop: the testing kit runs the worker only while a test drains).
   * The first claim goes out at once.
   */
  startClaiming(): void {
    if (this.state === 'running' || this.state === 'stopping') return;
    this.state = 'running';
    this.handlerNames = new Set(this.handlers.names());
    this.unsubscribe = this.store.subscribe(
      (event) => {
        if (event.type === 'job-available') {
          // Another name's job: this worker would not claim it.
          if (event.name !== undefined && !this.handlerNames.has(event.name)) return;
          if (event.dueAt !== undefined && event.dueAt > this.timers.now()) this.claims.scheduleWakeAt(event.dueAt);
          else this.claims.requestClaim();
        } else if (event.type === 'cancel-requested') {
          this.running.get(event.jobId)?.interrupt({ kind: 'canceled' });
        }
      },
      ['job-available', 'cancel-requested'],
    );
    // Renewal also carries cancellation, so it runs at least every second.
    this.leases.start();
    this.registration.start([...this.handlerNames]);
    this.loop = this.claims.run([...this.handlerNames]);
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
    this.lastChance.releaseWaiting();
    this.claims.requestClaim();
    const { shutdownTimeoutMs } = this.options.worker;
    // A claim that never answers (a hung custom store) must not hold the shutdown forever.
    if (!(await settlesWithin(this.loop, shutdownTimeoutMs))) {
      this.logger.warn(
        'The claim loop did not stop within shutdownTimeoutMs (a store call hangs); shutting down anyway',
      );
    }
    this.claims.cancelTimers();
    const inFlight = [...this.running.values()];
    if (inFlight.length > 0) {
      this.logger.log(`Shutting down: waiting up to ${shutdownTimeoutMs} ms for ${inFlight.length} running job(s)`);
      const drained = await settlesWithin(Promise.allSettled(inFlight.map((entry) => entry.done)), shutdownTimeoutMs);
      if (!drained) {
        const left = [...this.running.values()];
        this.logger.warn(`Shutdown grace period over: releasing ${left.length} job(s) back to the queue`);
        for (const entry of left) entry.interrupt({ kind: 'released' });
        await Promise.allSettled(left.map((entry) => entry.done));
      }
    }
    this.leases.stop();
    await this.registration.stop(shutdownTimeoutMs);
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

  /** Tells whenIdle's callers once nothing is claimed, wanted or running. */
  private notifyIfIdle(): void {
    if (this.idleWaiters.length === 0 || this.running.size > 0 || !this.claims.idle) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Starts the jobs a claim brought back, but at most one last-chance job (see LastChance). */
  private startClaimed(claimed: ClaimedJob[]): void | Promise<void> {
    const kept = this.lastChance.keepOneAtMost(claimed);
    if (!Array.isArray(kept)) return kept.then((toStart) => this.startAll(toStart));
    this.startAll(kept);
  }

  private startAll(toStart: ClaimedJob[]): void {
    for (const claim of toStart) this.start(claim);
    this.lastChance.started(toStart);
  }

  private start({ job, lease }: ClaimedJob): void {
    if (this.state !== 'running') {
      // Claimed while shutdown began: hand it straight back.
      void this.attempts.release(lease, job);
      return;
    }
    const abortController = new AbortController();
    let interrupted = false;
    let settle: (outcome: AttemptOutcome) => void = () => undefined;
    const outcome = new Promise<AttemptOutcome>((resolve) => {
      settle = resolve;
    });
    let holdsSlot = true;
    this.claims.takeSlot();
    const entry: RunningJob = {
      job,
      lease,
      abortController,
      interrupt: (interruption) => {
        if (!interrupted) {
          interrupted = true;
          abortController.abort(abortReason(interruption, job));
        }
        settle(interruption);
      },
      freeSlot: () => {
        if (!holdsSlot) return;
        holdsSlot = false;
        this.claims.giveSlotBack();
      },
      done: Promise.resolve(),
    };
    // Handed out again while an attempt still runs here: recovery took the job back from this very
    // worker (a hung handler), so that attempt's lease is gone. Abort it rather than let it run on
    // unseen, untimed and uncounted behind the new one.
    this.running.get(job.id)?.interrupt({ kind: 'lease-lost' });
    this.running.set(job.id, entry);
    entry.done = this.attempts.run(entry, outcome, settle).finally(() => this.ended(entry));
  }

  private ended(entry: RunningJob): void {
    entry.freeSlot();
    if (this.running.get(entry.job.id) === entry) this.running.delete(entry.job.id);
    this.notifyIfIdle();
    // Nothing was claimed while the lone job ran: what became due meanwhile is claimed now.
    if (this.lastChance.ended(entry)) this.claims.requestClaim();
    this.lastChance.admit();
  }
}

/** The worker's status as health and telemetry read it: made once, reading the parts' current state. */
function workerStatus(
  options: ResolvedAsyncEndpointsOptions,
  running: ReadonlyMap<string, RunningJob>,
  claims: ClaimLoop,
  isClaiming: () => boolean,
): WorkerStatus {
  const { enabled, workerId, maximumConcurrency } = options.worker;
  return {
    enabled,
    workerId,
    get claiming() {
      return isClaiming();
    },
    get active() {
      return running.size;
    },
    get utilization() {
      return running.size / maximumConcurrency;
    },
    get lastLoopAt() {
      return claims.lastLoopAt;
    },
  };
}
