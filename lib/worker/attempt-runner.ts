import { context as otelContext, isSpanContextValid, trace, type Span } from '@opentelemetry/api';
import { instanceToPlain, plainToInstance } from 'class-transformer';
import { capturedHeaders, type AsyncContext, type CapturedHeaders } from '../handlers/async-context.js';
import type { HandlerRegistry, RegisteredHandler } from '../handlers/handler-registry.js';
import { NonRetryableError } from '../errors/non-retryable.error.js';
import { attemptOf, JobErrorCode, toJobError, type Job, type JobError, type JsonValue } from '../job/index.js';
import { nextRetryAt } from '../job/retry-policy.js';
import type { ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';
import { Telemetry } from '../observability/telemetry.js';
import type { JobStore, Lease, Retention } from '../store/job-store.js';
import { DeadlineQueue } from '../timers/deadline-queue.js';
import type { WorkerTimers } from '../timers/worker-timers.js';
import { JobLogger } from './job-logger.js';
import type { LastChance } from './last-chance.js';
import { retentionOf } from './retention.js';
import type { AttemptOutcome, RunningJob } from './running-job.js';

/**
 * Runs one attempt of a claimed job: finds its handler, builds its context, keeps its time budget,
 * and writes its outcome (complete, fail, schedule a retry, release), each write fenced by the lease.
 */
export class AttemptRunner {
  /** Per timeout (handlers may set their own): the running attempts' time budgets. */
  private readonly timeBudgets = new Map<number, DeadlineQueue>();
  /** What the store keeps of a finished job, and how long: made once, not per attempt. */
  private readonly retention: Retention;

  constructor(
    private readonly store: JobStore,
    private readonly handlers: HandlerRegistry,
    private readonly timers: WorkerTimers,
    private readonly telemetry: Telemetry,
    private readonly options: ResolvedAsyncEndpointsOptions,
    private readonly lastChance: LastChance,
    /** Told when a retry was scheduled, so that the worker wakes when it is due. */
    private readonly retryScheduled: (retryAt: number) => void,
  ) {
    this.retention = retentionOf(options);
  }

  /**
   * Runs the attempt until `outcome` settles (the handler's `settle`, or an interruption) and writes
   * that outcome. The slot is given back as soon as the outcome is known. Never throws.
   */
  async run(
    entry: RunningJob,
    outcome: Promise<AttemptOutcome>,
    settle: (outcome: AttemptOutcome) => void,
  ): Promise<void> {
    const { job, lease } = entry;
    const handler = this.handlers.get(job.name);
    if (!handler) return this.foreignJob(entry);
    if (this.lastChance.applies(job) && !(await this.lastChance.waitToRunAlone(entry, outcome))) {
      // Canceled, lease lost or released at shutdown before it could start.
      entry.freeSlot();
      return this.finish(lease, job, await outcome, handler);
    }
    const logger = new JobLogger(job);
    const timeoutMs = this.timeoutOf(handler);
    const deadline = this.timeBudget(timeoutMs).add(() => entry.interrupt({ kind: 'timed-out' }));
    const span = this.telemetry.startAttemptSpan(job, attemptOf(job));
    const startedAt = performance.now();
    // The handler runs inside the attempt span, so its own spans are children of it. Without a tracing
    // SDK the span is an invalid no-op that no child could use: the handler runs as it is (~10 µs less
    // between claim and handler in a worker that was idle).
    const run = () => this.invoke(handler, entry, logger);
    (span.isRecording() || isSpanContextValid(span.spanContext())
      ? otelContext.with(trace.setSpan(otelContext.active(), span), run)
      : run()
    ).then(
      (value) => settle({ kind: 'returned', value }),
      (error: unknown) => settle({ kind: 'threw', error }),
    );
    const result = await outcome;
    deadline.settle();
    this.recordAttempt(job, span, startedAt, result);
    // The next job may start while this outcome is written (the lease still covers this one): the slot
    // would otherwise sit idle for a round trip per job, half of a no-op job's cycle.
    entry.freeSlot();
    if (result.kind === 'timed-out') logger.warn(`Attempt ${attemptOf(job)} timed out after ${timeoutMs} ms`);
    await this.finish(lease, job, result, handler, logger);
  }

  /** Hands the job back to the queue (not a failed attempt); logs rather than throws. */
  async release(lease: Lease, job: Job): Promise<void> {
    try {
      await this.store.releaseJob(lease, { now: this.timers.now(), retention: this.retention });
    } catch (error) {
      new JobLogger(job).error(`Could not release the job; recovery will take it back: ${(error as Error).message}`);
    }
  }

  /**
   * A job of a name this worker did not claim (claims name its handlers): only a custom store that
   * ignores ClaimOptions.names hands one out. It goes back to the queue, for a worker that has its handler.
   */
  private async foreignJob(entry: RunningJob): Promise<void> {
    entry.freeSlot();
    new JobLogger(entry.job).error(
      `The store (${this.store.type}) handed worker ${this.options.worker.workerId} a job of '${entry.job.name}', a name it has no @AsyncHandler for and did not claim: the store ignores ClaimOptions.names (run the conformance suite against it). The job is released to the queue.`,
    );
    await this.release(entry.lease, entry.job);
  }

  private timeoutOf(handler: RegisteredHandler | undefined): number {
    return handler?.metadata.timeoutMs ?? this.options.worker.jobTimeoutMinutes * 60_000;
  }

  /** The time budgets of attempts with this timeout, on one timer (one per distinct timeout). */
  private timeBudget(timeoutMs: number): DeadlineQueue {
    let budgets = this.timeBudgets.get(timeoutMs);
    if (!budgets) this.timeBudgets.set(timeoutMs, (budgets = new DeadlineQueue(timeoutMs)));
    return budgets;
  }

  private recordAttempt(job: Job, span: Span, startedAt: number, result: AttemptOutcome): void {
    this.telemetry.processingDuration.record(
      (performance.now() - startedAt) / 1000,
      this.telemetry.cachedAttributes(`job.outcome:${result.kind}:${job.name}`, () =>
        this.telemetry.attributes({ 'job.name': job.name, 'job.outcome': result.kind }),
      ),
    );
    const error = result.kind === 'returned' ? undefined : attemptError(result, this.options.http.exposeErrorDetails);
    Telemetry.endSpan(span, error);
  }

  private async invoke(
    handler: RegisteredHandler,
    { job, lease, abortController }: RunningJob,
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
      // Its AbortSignal is built when first read (a handler that never looks at it costs none).
      get signal() {
        return abortController.signal;
      },
      reportProgress: async (progress) => {
        if (abortController.signal.aborted) return;
        await this.store.reportProgress(lease, toJson(progress), this.timers.now());
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
    // Every store call below is awaited inside this try: a rejection must reach the catch, not escape
    // as an unhandled rejection (which ends a Node process).
    try {
      if (outcome.kind !== 'returned') return await this.finishUnreturned(lease, job, outcome, handler, logger);
      let result: JsonValue | null;
      try {
        result = toJson(outcome.value);
      } catch (error) {
        return await this.fail(lease, job, toJobError(error, this.options.http.exposeErrorDetails), false, handler);
      }
      const options = { now: this.timers.now(), retention: this.retention };
      const written = await this.store.completeJob(lease, result, options);
      if (written === 'lease-lost') logger.warn('Completed, but the lease was lost: the result is discarded');
    } catch (error) {
      // The lease will expire and recovery will take the job back: delivery stays at least once.
      logger.error(`Could not record the attempt's outcome (${outcome.kind}): ${(error as Error).message}`);
    }
  }

  /** An attempt that did not return: abandoned (lease lost), released, or failed (maybe to be retried). */
  private finishUnreturned(
    lease: Lease,
    job: Job,
    outcome: Exclude<AttemptOutcome, { kind: 'returned' }>,
    handler: RegisteredHandler | undefined,
    logger: JobLogger,
  ): Promise<void> | undefined {
    switch (outcome.kind) {
      case 'lease-lost':
        logger.warn('Lease lost (the job was taken back by recovery or expired); this attempt is abandoned');
        return;
      case 'released':
        return this.release(lease, job);
      case 'timed-out': {
        const message = `The attempt exceeded its time budget of ${this.timeoutOf(handler)} ms (worker.jobTimeoutMinutes or the handler's timeoutMs).`;
        return this.fail(lease, job, { code: JobErrorCode.Timeout, message }, true, handler);
      }
      case 'canceled':
        return this.fail(lease, job, { code: JobErrorCode.Canceled, message: 'The job was canceled.' }, false, handler);
      case 'threw': {
        const error = toJobError(outcome.error, this.options.http.exposeErrorDetails);
        return this.fail(lease, job, error, !(outcome.error instanceof NonRetryableError), handler);
      }
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
    const retryAt = nextRetryAt(
      job,
      retryable,
      {
        retryDelayBaseSeconds: handler?.metadata.retryDelayBaseSeconds ?? this.options.jobManager.retryDelayBaseSeconds,
        maxRetryDelaySeconds: this.options.jobManager.maxRetryDelaySeconds,
      },
      now,
    );
    const outcome = await this.store.failJob(lease, error, { now, retryAt, retention: this.retention });
    const logger = new JobLogger(job);
    if (outcome === 'scheduled') {
      logger.warn(
        `Attempt ${attemptOf(job)} failed (${error.code}); retry ${job.retryCount + 1} of ${job.maxRetries} at ${new Date(retryAt!).toISOString()}`,
      );
      this.retryScheduled(retryAt!);
    } else if (outcome === 'failed') {
      logger.error(`Failed (${error.code}): ${error.message}`);
    } else if (outcome === 'canceled') {
      logger.log('Canceled');
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
  const code = codes[outcome.kind] ?? outcome.kind.toUpperCase().replace('-', '_');
  return { code, message: `Attempt ended: ${outcome.kind}` };
}

/** Handlers may return class instances or nothing; the store keeps plain JSON. */
function toJson(value: unknown): JsonValue | null {
  if (value === undefined || value === null) return null;
  const plain = typeof value === 'object' ? instanceToPlain(value) : value;
  return JSON.parse(JSON.stringify(plain)) as JsonValue;
}
