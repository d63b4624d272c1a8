import { Inject, Injectable } from '@nestjs/common';
import { attemptOf, JobStatus, type Job } from '../job/index.js';
import { JobStore } from '../store/job-store.js';
import { JobWorker } from '../worker/job-worker.js';
import { WorkerTimers } from '../timers/worker-timers.js';
import type { ManualWorkerTimers } from './manual-worker.js';

/** Options of `AsyncEndpointsTestHarness.drain()`; all optional. */
export interface DrainOptions {
  /** Also run retries whose delay has not elapsed: the worker's clock skips ahead to each. Default false. */
  skipBackoff?: boolean;
  /** drain() rejects when jobs still run after this long (a handler that never settles). Default 2000. */
  timeoutMs?: number;
  /**
   * drain() stops the worker and rejects when jobs were queued more often than this while it ran
   * (submissions, retries, re-queues): jobs that keep each other going. Default 1000.
   */
  maxJobsQueued?: number;
}

/** A job drain() left behind, as the rejection names it. */
export interface StuckJob {
  id: string;
  name: string;
  status: JobStatus;
  attempt: number;
}

/** drain() gave up: `jobs` are the ones still waiting or running, `message` names them and the cause. */
export class DrainError extends Error {
  constructor(
    message: string,
    readonly jobs: StuckJob[],
  ) {
    super(message);
    this.name = 'DrainError';
  }
}

const STUCK_JOBS_LISTED = 10;

/**
 * Drives the worker of `AsyncEndpointsTestingModule`: jobs run only inside `drain()`, through the
 * library's own worker (same claim, attempt, retry and lease fencing as in production).
 */
@Injectable()
export class AsyncEndpointsTestHarness {
  /** @internal Nest injects it; users get the instance from the module, never construct it. */
  constructor(
    private readonly worker: JobWorker,
    private readonly store: JobStore,
    @Inject(WorkerTimers) private readonly timers: ManualWorkerTimers,
  ) {}

  /**
   * Runs every due job, and the retries and jobs they lead to, until no job is due or running; with
   * `skipBackoff`, until no job is waiting at all. Rejects with a DrainError naming the jobs when a
   * handler does not settle within `timeoutMs`, when jobs keep being queued beyond `maxJobsQueued`, or
   * when a due job is left that no worker claims.
   */
  async drain({ skipBackoff = false, timeoutMs = 2000, maxJobsQueued = 1000 }: DrainOptions = {}): Promise<void> {
    checkDrainOptions(timeoutMs, maxJobsQueued);
    if (!this.worker.status.enabled) {
      throw new Error(
        "drain() runs jobs with this app's worker, but worker.enabled is false: leave it out of AsyncEndpointsTestingModule.forRoot options.",
      );
    }
    let queued = 0;
    let overflow: () => void = () => undefined;
    const overflowed = new Promise<'overflow'>((resolve) => (overflow = () => resolve('overflow')));
    const unsubscribe = this.store.subscribe(
      (event) => {
        if (event.type === 'job-available' && ++queued > maxJobsQueued) overflow();
      },
      ['job-available'],
    );
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    let unclaimed = '';
    try {
      for (;;) {
        this.worker.startClaiming();
        const ended = await Promise.race([this.worker.whenIdle().then(() => 'idle' as const), overflowed, timedOut]);
        if (ended === 'timeout') {
          // The worker keeps running: closing the app aborts and releases what still runs.
          throw await this.stuck(`drain() gave up after ${timeoutMs} ms (timeoutMs): a handler did not settle`);
        }
        await this.worker.stop();
        if (ended === 'overflow') {
          throw await this.stuck(
            `drain() stopped: jobs were queued more than ${maxJobsQueued} times while it ran (maxJobsQueued); they keep being queued or retried`,
          );
        }
        // Retries that came due while the worker ran (it sets no timers here) take another round; due
        // jobs that a round left as they were are jobs this worker does not claim.
        const due = (await this.dueJobs()).map((job) => job.id).join();
        if (due !== '' && due === unclaimed) {
          throw await this.stuck(
            'drain() left due jobs that the worker does not claim (no @AsyncHandler for their name, or jobManager.maxConcurrentJobs reached)',
          );
        }
        unclaimed = due;
        if (due !== '') continue;
        const next = skipBackoff ? await this.nextRetryAt() : null;
        if (next === null) return;
        this.timers.advanceTo(next);
      }
    } finally {
      clearTimeout(timer);
      unsubscribe();
    }
  }

  /** Queued jobs, and Scheduled ones whose retry is due on the worker's clock. */
  private async dueJobs(): Promise<Job[]> {
    const now = this.timers.now();
    const waiting = [...(await this.jobsIn(JobStatus.Queued)), ...(await this.jobsIn(JobStatus.Scheduled))];
    return waiting.filter((job) => job.status === JobStatus.Queued || (job.retryDelayUntil ?? 0) <= now);
  }

  private async nextRetryAt(): Promise<number | null> {
    const scheduled = await this.jobsIn(JobStatus.Scheduled);
    return scheduled.length === 0 ? null : Math.min(...scheduled.map((job) => job.retryDelayUntil ?? 0));
  }

  private async jobsIn(status: JobStatus): Promise<Job[]> {
    const jobs: Job[] = [];
    let cursor: string | null = null;
    do {
      const page = await this.store.listJobs({ status, limit: 1000, cursor });
      jobs.push(...page.jobs);
      cursor = page.nextCursor;
    } while (cursor !== null);
    return jobs;
  }

  private async stuck(cause: string): Promise<DrainError> {
    const statuses = [JobStatus.InProgress, JobStatus.Queued, JobStatus.Scheduled];
    const jobs = (await Promise.all(statuses.map((status) => this.jobsIn(status))))
      .flat()
      .map((job): StuckJob => ({ id: job.id, name: job.name, status: job.status, attempt: attemptOf(job) }));
    const listed = jobs
      .slice(0, STUCK_JOBS_LISTED)
      .map((job) => `${job.id} (${job.name}, ${job.status}, attempt ${job.attempt})`);
    const more = jobs.length > STUCK_JOBS_LISTED ? ` and ${jobs.length - STUCK_JOBS_LISTED} more` : '';
    return new DrainError(`${cause}. Jobs: ${listed.join(', ') || 'none'}${more}.`, jobs);
  }
}

function checkDrainOptions(timeoutMs: number, maxJobsQueued: number): void {
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
    throw new RangeError(`drain(): timeoutMs must be a number of milliseconds above 0, got ${String(timeoutMs)}`);
  }
  if (!(Number.isInteger(maxJobsQueued) && maxJobsQueued > 0)) {
    throw new RangeError(`drain(): maxJobsQueued must be an integer above 0, got ${String(maxJobsQueued)}`);
  }
}
