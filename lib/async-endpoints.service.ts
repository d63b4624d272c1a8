import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import {
  IdempotencyConflictError,
  InvalidPayloadError,
  QueueFullError,
  StoreFullError,
  UnknownAsyncEndpointError,
} from './errors/submit.errors.js';
import { ASYNC_ENDPOINTS_OPTIONS, DECLARED_ENDPOINT } from './async-endpoints.module-definition.js';
import { HandlerRegistry } from './handlers/handler-registry.js';
import {
  fingerprintOf,
  isTerminal,
  toJobDocument,
  toJobError,
  type Job,
  type JobDocument,
  type JobStatus,
  type JsonValue,
} from './job/index.js';
import { jsonInputProblem } from './job/json-input.js';
import { Telemetry } from './observability/telemetry.js';
import type { ResolvedAsyncEndpointsOptions } from './options/async-endpoints-options.js';
import { JobFinishedWaiters } from './store/job-finished-waiters.js';
import {
  JobStore,
  type CancelResult,
  type JobPage,
  type JobStats,
  type RetryJobResult,
  type TerminalJobStatus,
} from './store/job-store.js';
import { DeadlineQueue } from './timers/deadline-queue.js';
import { MAX_TIMER_MS } from './timers/max-timer.js';
import { ownerScopedJobId } from './http/job-id.js';
import { StoreUnavailableError } from './errors/store-unavailable.error.js';
import { STORE_CLOSED } from './store/store-closed.js';
import { retentionOf } from './worker/retention.js';

/** `AsyncEndpointsService.submit`'s options: what an HTTP request would carry. */
export interface SubmitOptions {
  /**
   * The client's chosen id (a UUID); a second submit with the same id is an idempotent replay. Without
   * an owner it is the job id; with an owner, the job id is derived from both (each owner has its own ids).
   */
  jobId?: string;
  /** Client idempotency key, scoped by endpoint name and owner. */
  idempotencyKey?: string;
  /** Stored as they are and shown to the handler as `ctx.headers`. */
  headers?: Record<string, string>;
  owner?: string;
  routeParams?: Record<string, string>;
  queryParams?: Record<string, string | string[]>;
  /** W3C trace context of the producer (`traceparent`, `tracestate`); the submit span's parent. */
  traceContext?: Record<string, string>;
}

/** `AsyncEndpointsService.list`'s options form. */
export interface ListOptions {
  status: JobStatus;
  /** Only jobs of this name (endpoint). */
  name?: string;
  /** Only jobs of this owner (`jobOwner`). */
  owner?: string;
  /** Most jobs in the page. Default 50. */
  limit?: number;
  /** The `nextCursor` of the page before; absent or null for the first page. */
  cursor?: string | null;
}

/** A page of `AsyncEndpointsService.list({ ... })`, newest first. */
export interface JobDocumentPage {
  jobs: JobDocument[];
  /** Pass it as `cursor` for the next page; null when there is none. */
  nextCursor: string | null;
}

/** `AsyncEndpointsService.waitForTerminal`'s options. */
export interface WaitOptions {
  /** The caller's owner (see `jobOwner`): someone else's job is not found. */
  owner?: string;
  /** Longest wait, in milliseconds. */
  timeoutMs: number;
  /** Stops the wait early (the caller went away); the job as last read is returned. */
  signal?: AbortSignal;
}

export interface SubmittedJob {
  job: Job;
  /** True when an earlier submit with the same key or id was returned instead of a new job. */
  replayed: boolean;
}

/** `AsyncEndpointsService.purge`'s options. */
export interface PurgeOptions {
  /** Completed, Failed or Canceled: live jobs are never purged. */
  status: TerminalJobStatus;
  /** Only jobs that finished at least this many milliseconds ago. */
  olderThanMs: number;
  /** Only jobs of this name. */
  name?: string;
  /** Most jobs deleted in this call. Default 1000. */
  limit?: number;
}

/** A chosen id is scoped by owner: another owner's same id is another job (see ownerScopedJobId). */
function jobIdOf({ jobId, owner }: SubmitOptions): string {
  if (jobId === undefined) return randomUUID();
  return owner === undefined ? jobId : ownerScopedJobId(owner, jobId);
}

/** Store calls on the request path answer within this, or the caller gets a 503. */
const STORE_DEADLINE_MS = 2000;

/**
 * Submit, read, cancel and list jobs from code: for producers that are not HTTP (a message
 * consumer, a cron job) and for admin tooling. The HTTP endpoints use it too.
 */
@Injectable()
export class AsyncEndpointsService {
  private readonly finishes = new JobFinishedWaiters(this.store);
  /** Store calls on the request path, each answered within STORE_DEADLINE_MS or a 503. */
  private readonly deadlines = new DeadlineQueue(STORE_DEADLINE_MS);

  /** @internal Nest injects it; users get the instance from the module, never construct it. */
  constructor(
    private readonly store: JobStore,
    private readonly handlers: HandlerRegistry,
    @Inject(DECLARED_ENDPOINT) private readonly declaredEndpoint: (name: string) => boolean,
    private readonly telemetry: Telemetry,
    @Inject(ASYNC_ENDPOINTS_OPTIONS) private readonly options: ResolvedAsyncEndpointsOptions,
  ) {}

  /**
   * Stores a job for the handler `name` and returns its document (status Queued, or the replayed job's).
   * Throws InvalidPayloadError for a payload nested deeper than `http.maxJsonDepth` or with a
   * `__proto__` key, as the HTTP endpoints answer 400 to such a body.
   */
  async submit(name: string, payload: JsonValue = {}, options: SubmitOptions = {}): Promise<JobDocument> {
    const refused = jsonInputProblem(payload, this.options.http.maxJsonDepth);
    if (refused) throw new InvalidPayloadError(refused.detail);
    const { job } = await this.submitJob(name, payload, options);
    return toJobDocument(job);
  }

  /** @internal The HTTP layer needs the stored job and whether it was replayed. */
  async submitJob(name: string, payload: JsonValue, options: SubmitOptions): Promise<SubmittedJob> {
    const handler = this.handlers.get(name);
    // A name this process neither handles nor declares as an endpoint is taken for a typo where workers
    // run; an endpoint's jobs wait for a worker with its handler, and an API-only process submits for
    // workers elsewhere.
    if (!handler && this.options.worker.enabled && !this.declaredEndpoint(name)) {
      throw new UnknownAsyncEndpointError(name);
    }
    const { span, carrier } = this.telemetry.startSubmitSpan(name, options.traceContext ?? {});
    try {
      const submitted = await this.storeJob(name, payload, options, handler?.metadata.maxRetries, carrier);
      span.setAttribute('job.id', submitted.job.id);
      span.setAttribute('job.replayed', submitted.replayed);
      Telemetry.endSpan(span);
      return submitted;
    } catch (error) {
      // The library's own errors (store, admission), not a handler's: their messages are public.
      Telemetry.endSpan(span, toJobError(error, true));
      throw error;
    }
  }

  private async storeJob(
    name: string,
    payload: JsonValue,
    options: SubmitOptions,
    maxRetries: number | undefined,
    traceContext: Record<string, string>,
  ): Promise<SubmittedJob> {
    const result = await this.withDeadline(
      this.store.createJob(
        {
          id: jobIdOf(options),
          idGenerated: options.jobId === undefined,
          name,
          payload,
          headers: options.headers ?? {},
          routeParams: options.routeParams ?? {},
          queryParams: options.queryParams ?? {},
          owner: options.owner ?? null,
          idempotencyKey: options.idempotencyKey ?? null,
          // Only a submission with a key or a chosen id can meet an existing job (see isReplayOf).
          fingerprint:
            options.idempotencyKey !== undefined || options.jobId !== undefined ? fingerprintOf(name, payload) : '',
          traceContext: Object.keys(traceContext).length > 0 ? traceContext : null,
          maxRetries: maxRetries ?? this.options.jobManager.defaultMaxRetries,
        },
        { now: Date.now(), maximumQueueSize: this.options.worker.maximumQueueSize },
      ),
      'submit',
    );
    switch (result.outcome) {
      case 'created':
        return { job: result.job, replayed: false };
      case 'replayed':
        return { job: result.job, replayed: true };
      case 'conflict':
        throw new IdempotencyConflictError(result.job.id);
      case 'queue-full':
        throw new QueueFullError(result.waiting, this.options.worker.maximumQueueSize);
      case 'store-full':
        throw new StoreFullError(result.reason);
    }
  }

  /** The job document, or null when the id is unknown, expired, or owned by someone else. */
  async get(id: string, options: { owner?: string } = {}): Promise<JobDocument | null> {
    const job = await this.getJob(id, options.owner);
    return job && toJobDocument(job, undefined, this.options.http.exposeErrorDetails);
  }

  /** The stored job whatever its owner, payload included: for admin tooling, not for clients. Null when the id is unknown or expired. */
  async getStoredJob(id: string): Promise<Job | null> {
    return this.withDeadline(this.store.getJob(id), 'read');
  }

  /** @internal */
  async getJob(id: string, owner?: string): Promise<Job | null> {
    const job = await this.withDeadline(this.store.getJob(id), 'read');
    if (!job || !this.ownedBy(job, owner)) return null;
    return job;
  }

  /**
   * Waits until the job is terminal or `timeoutMs` passed, then returns its document; null when the
   * id is unknown, expired, or owned by someone else. The store's `job-finished` event wakes it, from
   * whichever process finished the job: the store is read once before and once after the wait.
   */
  async waitForTerminal(id: string, options: WaitOptions): Promise<JobDocument | null> {
    const job = await this.waitForJob(id, options);
    return job && toJobDocument(job, undefined, this.options.http.exposeErrorDetails);
  }

  /** @internal */
  async waitForJob(id: string, { owner, timeoutMs, signal }: WaitOptions): Promise<Job | null> {
    // Registered before the read, so that a finish between the read and the wait still wakes it.
    const watch = this.finishes.watch(id);
    try {
      const job = await this.getJob(id, owner);
      if (!job || isTerminal(job.status)) return job;
      await watch.until(Math.min(timeoutMs, MAX_TIMER_MS), signal);
      if (signal?.aborted) return job;
      return await this.getJob(id, owner);
    } finally {
      watch.stop();
    }
  }

  /** @internal Waits registered now (long-polls in flight). */
  get waitingCount(): number {
    return this.finishes.size;
  }

  /** @internal Nest's shutdown hook (OnModuleDestroy). Pending waits answer at once: a long-poll must not hold up the shutdown. */
  onModuleDestroy(): void {
    this.finishes.close();
  }

  /**
   * Cancels a job: Queued or Scheduled ones at once, InProgress ones by aborting the handler's
   * signal wherever it runs.
   */
  async cancel(id: string, options: { owner?: string } = {}): Promise<CancelResult> {
    const job = await this.getJob(id, options.owner);
    if (!job) return { outcome: 'not-found' };
    return this.withDeadline(
      this.store.cancelJob(id, { now: Date.now(), retention: retentionOf(this.options) }),
      'cancel',
    );
  }

  /**
   * A page of stored jobs (payloads, owners and workers included: for admin tooling, not for clients)
   * in one status, optionally of one name and one owner, newest first. Pass the page's `nextCursor`
   * as `cursor` for the next one; it is null after the last.
   */
  async listJobs({ limit = 50, ...query }: ListOptions): Promise<JobPage> {
    return this.withDeadline(this.store.listJobs({ ...query, limit }), 'read');
  }

  /** Counts per status, and per name the waiting and running jobs and the workers that run them. */
  async stats(): Promise<JobStats> {
    return this.withDeadline(this.store.stats(Date.now()), 'read');
  }

  /**
   * An operator's retry of a Failed or Canceled job: Queued again, due at once, with its whole
   * attempt budget. Other statuses answer `not-retryable` and change nothing.
   */
  async retry(id: string): Promise<RetryJobResult> {
    return this.withDeadline(this.store.retryJob(id, { now: Date.now() }), 'retry');
  }

  /** Deletes finished jobs of one status (and name) older than `olderThanMs`, ahead of their retention. Returns their ids. */
  async purge({ status, olderThanMs, name, limit = 1000 }: PurgeOptions): Promise<string[]> {
    const now = Date.now();
    return this.withDeadline(
      this.store.purgeJobs({ status, name, finishedBefore: now - olderThanMs, limit, now }),
      'purge',
    );
  }

  /**
   * Up to `limit` jobs in one status, newest first (live ones by when they entered the status, finished
   * ones by when they finished), as documents.
   */
  async list(status: JobStatus, limit?: number): Promise<JobDocument[]>;
  /**
   * A page of jobs in one status, optionally of one name and one owner, newest first. Pass the page's
   * `nextCursor` as `cursor` for the next one (null: no more). A filtered page may hold fewer than
   * `limit` jobs while `nextCursor` is not null (a store reads a bounded slice per call).
   */
  async list(options: ListOptions): Promise<JobDocumentPage>;
  async list(what: JobStatus | ListOptions, limit = 50): Promise<JobDocument[] | JobDocumentPage> {
    const options = typeof what === 'string' ? { status: what, limit } : what;
    const page = await this.store.listJobs({ ...options, limit: options.limit ?? 50 });
    const jobs = page.jobs.map((job) => toJobDocument(job, undefined, this.options.http.exposeErrorDetails));
    return typeof what === 'string' ? jobs : { jobs, nextCursor: page.nextCursor };
  }

  private ownedBy(job: Job, owner: string | undefined): boolean {
    return job.owner === null || job.owner === (owner ?? null);
  }

  private withDeadline<T>(operation: Promise<T>, what: 'submit' | 'read' | 'cancel' | 'retry' | 'purge'): Promise<T> {
    // A write that got no answer may still happen; a read changes nothing.
    const outcomeUnknown = what !== 'read';
    return new Promise<T>((resolve, reject) => {
      const deadline = this.deadlines.add(() =>
        reject(
          new StoreUnavailableError(this.store.type, `${what} got no answer within ${STORE_DEADLINE_MS} ms`, {
            outcomeUnknown,
          }),
        ),
      );
      operation.then(
        (value) => {
          deadline.settle();
          resolve(value);
        },
        (error: unknown) => {
          deadline.settle();
          reject(
            isConnectionError(error) && !(error instanceof StoreUnavailableError)
              ? new StoreUnavailableError(this.store.type, (error as Error).message, { cause: error, outcomeUnknown })
              : error,
          );
        },
      );
    });
  }
}

/**
 * The codes of errors that say the store cannot be reached: a closed store's, and Node's for a socket
 * that could not reach its peer or lost it. The built-in stores throw StoreUnavailableError for their
 * connection failures; these codes catch a custom store's raw network errors (a message's words say
 * nothing reliable).
 */
const CONNECTION_ERROR_CODES: ReadonlySet<string> = new Set([
  STORE_CLOSED,
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

function isConnectionError(error: unknown): boolean {
  return error instanceof Error && CONNECTION_ERROR_CODES.has(String((error as NodeJS.ErrnoException).code));
}
