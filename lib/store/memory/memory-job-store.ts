import { randomUUID } from 'node:crypto';
import {
  isTerminal,
  JOB_STATUSES,
  JobErrorCode,
  JobStatus,
  type Job,
  type JobError,
  type JsonValue,
} from '../../job/index.js';
import {
  assertPurgeableStatus,
  isReplayOf,
  JobStore,
  type CancelResult,
  type ClaimedJob,
  type ClaimOptions,
  type CompleteOutcome,
  type CreateJobOptions,
  type CreateJobResult,
  type FailOptions,
  type FailOutcome,
  type JobStats,
  type Lease,
  type ListJobsOptions,
  type NewJob,
  type PurgeJobsOptions,
  type RecoverJobsOptions,
  type RecoveryReport,
  type ReleaseOutcome,
  type RenewResult,
  type Retention,
  type RetryJobResult,
  type StoreEvent,
  type StoreEventListener,
} from '../job-store.js';
import { copyJob, newQueuedJob } from '../../job/job-records.js';
import { idempotencyScopeKey } from '../idempotency-scope.js';
import { storeClosedError } from '../store-closed.js';
import { DueQueue } from './due-queue.js';
import { RetainedJobs, type MemoryStoreLimits } from './retained-jobs.js';
import { requestSize } from './retained-size.js';
import type { StoredJob } from './stored-job.js';

export type { MemoryStoreLimits } from './retained-jobs.js';

/**
 * The embedded store: one process, nothing durable across restarts. It hands out copies, never the
 * live records. Due jobs wait in a DueQueue (due-queue.ts); retention and the caps are RetainedJobs'
 * (retained-jobs.ts): at most maxRetainedJobs jobs and maxRetainedBytes bytes, evicting the oldest
 * finished jobs first; live jobs never are.
 */
export class MemoryJobStore extends JobStore {
  readonly type = 'memory';

  private readonly jobs = new Map<string, StoredJob>();
  private readonly idempotencyIndex = new Map<string, string>();
  private readonly queue = new DueQueue(this.jobs);
  private readonly inProgress = new Set<string>();
  private readonly counts = Object.fromEntries(JOB_STATUSES.map((status) => [status, 0])) as Record<
    JobStatus,
    number
  >;
  private readonly listeners = new Set<StoreEventListener>();
  private readonly retained: RetainedJobs;
  private sequence = 0;
  private recoveryLockUntil = 0;
  private closed = false;

  constructor(limits: MemoryStoreLimits = {}) {
    super();
    const { jobs, idempotencyIndex, counts } = this;
    this.retained = new RetainedJobs({ jobs, idempotencyIndex, counts }, limits);
  }

  async init(): Promise<void> {
    this.closed = false;
  }

  async createJob(input: NewJob, options: CreateJobOptions): Promise<CreateJobResult> {
    this.assertOpen();
    this.retained.purgeExpired(options.now);
    const indexKey = input.idempotencyKey === null ? null : idempotencyScopeKey(input);
    // The job the key points to, else one with the chosen id: a new job never overwrites an old one.
    const keyed = indexKey === null ? undefined : this.idempotencyIndex.get(indexKey);
    const existing = (keyed === undefined ? undefined : this.jobs.get(keyed)) ?? this.jobs.get(input.id);
    if (existing) {
      return { outcome: isReplayOf(existing, input) ? 'replayed' : 'conflict', job: copyJob(existing) };
    }
    const waiting = this.counts.Queued + this.counts.Scheduled;
    if (waiting >= options.maximumQueueSize) return { outcome: 'queue-full', waiting };

    const queued = newQueuedJob(input, options.now);
    const bytes = requestSize(queued);
    const full = this.retained.makeRoom(1, bytes);
    if (full) return { outcome: 'store-full', reason: full };
    const job: StoredJob = Object.assign(queued, {
      leaseToken: null,
      expiresAt: null,
      seq: this.sequence++,
      queueVersion: 0,
      bytes,
      requestBytes: bytes,
    });
    this.jobs.set(job.id, job);
    this.retained.added(job);
    this.counts.Queued++;
    if (indexKey !== null) this.idempotencyIndex.set(indexKey, job.id);
    this.queue.enqueue(job, options.now);
    this.emit({ type: 'job-available' });
    return { outcome: 'created', job: copyJob(job) };
  }

  async getJob(id: string): Promise<Job | null> {
    this.assertOpen();
    const job = this.jobs.get(id);
    if (!job || (job.expiresAt !== null && job.expiresAt <= Date.now())) return null;
    return copyJob(job);
  }

  async claimDueJobs(options: ClaimOptions): Promise<ClaimedJob[]> {
    this.assertOpen();
    this.retained.purgeExpired(options.now);
    let limit = options.limit;
    if (options.maxConcurrentJobs !== null) {
      limit = Math.min(limit, options.maxConcurrentJobs - this.inProgress.size);
    }
    const claimed: ClaimedJob[] = [];
    while (claimed.length < limit) {
      const job = this.queue.nextDue(options.now);
      if (!job) break;
      this.queue.takeHead();
      const token = randomUUID();
      this.setStatus(job, JobStatus.InProgress);
      job.startedAt = options.now;
      job.lastUpdatedAt = options.now;
      job.retryDelayUntil = null;
      job.workerId = options.workerId;
      job.leaseToken = token;
      job.leaseExpiresAt = options.now + options.leaseMs;
      claimed.push({ job: copyJob(job), lease: { jobId: job.id, token } });
    }
    return claimed;
  }

  async renewLeases(leases: Lease[], options: { now: number; leaseMs: number }): Promise<RenewResult> {
    this.assertOpen();
    const result: RenewResult = { lost: [], cancelRequested: [] };
    for (const lease of leases) {
      const job = this.leased(lease);
      if (!job) {
        result.lost.push(lease.jobId);
        continue;
      }
      job.leaseExpiresAt = options.now + options.leaseMs;
      if (job.cancelRequested) result.cancelRequested.push(job.id);
    }
    return result;
  }

  async reportProgress(lease: Lease, progress: JsonValue, now: number): Promise<boolean> {
    this.assertOpen();
    const job = this.leased(lease);
    if (!job) return false;
    job.progress = structuredClone(progress);
    job.lastUpdatedAt = now;
    return true;
  }

  async completeJob(
    lease: Lease,
    result: JsonValue | null,
    options: { now: number; retention: Retention },
  ): Promise<CompleteOutcome> {
    this.assertOpen();
    const job = this.leased(lease);
    if (!job) return 'lease-lost';
    job.result = structuredClone(result);
    job.error = null;
    if (options.retention.dropPayloadOnFinish) {
      job.payload = null;
      job.headers = {};
      job.queryParams = {};
      job.requestBytes = requestSize(job);
    }
    this.finish(job, JobStatus.Completed, options.now, options.retention);
    return 'completed';
  }

  async failJob(lease: Lease, error: JobError, options: FailOptions): Promise<FailOutcome> {
    this.assertOpen();
    const job = this.leased(lease);
    if (!job) return 'lease-lost';
    job.error = structuredClone(error);
    if (job.cancelRequested) {
      this.finish(job, JobStatus.Canceled, options.now, options.retention);
      return 'canceled';
    }
    if (options.retryAt === null) {
      this.finish(job, JobStatus.Failed, options.now, options.retention);
      return 'failed';
    }
    this.leaveProgress(job, JobStatus.Scheduled, options.now);
    job.retryCount++;
    job.retryDelayUntil = options.retryAt;
    this.queue.enqueue(job, options.retryAt);
    this.emit({ type: 'job-available', dueAt: options.retryAt });
    return 'scheduled';
  }

  async releaseJob(lease: Lease, options: { now: number; retention: Retention }): Promise<ReleaseOutcome> {
    this.assertOpen();
    const job = this.leased(lease);
    if (!job) return 'lease-lost';
    if (job.cancelRequested) {
      this.finish(job, JobStatus.Canceled, options.now, options.retention);
      return 'canceled';
    }
    this.requeue(job, options.now);
    // As on Redis: a worker with free slots takes it at once.
    this.emit({ type: 'job-available' });
    return 'released';
  }

  async cancelJob(id: string, options: { now: number; retention: Retention }): Promise<CancelResult> {
    this.assertOpen();
    this.retained.purgeExpired(options.now);
    const job = this.jobs.get(id);
    if (!job) return { outcome: 'not-found' };
    if (isTerminal(job.status)) return { outcome: 'already-terminal', job: copyJob(job) };
    if (job.status === JobStatus.InProgress) {
      if (!job.cancelRequested) {
        job.cancelRequested = true;
        job.lastUpdatedAt = options.now;
        this.emit({ type: 'cancel-requested', jobId: id });
      }
      return { outcome: 'cancel-requested', job: copyJob(job) };
    }
    job.queueVersion++;
    this.finish(job, JobStatus.Canceled, options.now, options.retention);
    return { outcome: 'canceled', job: copyJob(job) };
  }

  async recoverJobs(options: RecoverJobsOptions): Promise<RecoveryReport | null> {
    this.assertOpen();
    if (this.recoveryLockUntil > options.now) return null;
    this.recoveryLockUntil = options.now + options.lockMs;
    this.retained.purgeExpired(options.now);
    const report: RecoveryReport = { requeued: [], exhausted: [], canceled: [], removedEntries: 0 };
    for (const id of [...this.inProgress]) {
      const job = this.jobs.get(id)!;
      const leaseExpired = job.leaseExpiresAt !== null && job.leaseExpiresAt <= options.now;
      const overdue = job.startedAt !== null && options.now - job.startedAt >= options.maxInProgressMs;
      if (!leaseExpired && !overdue) continue;
      if (job.cancelRequested) {
        this.finish(job, JobStatus.Canceled, options.now, options.retention);
        report.canceled.push(id);
      } else if (job.recoveryCount >= options.maxRecoveries) {
        job.error = {
          code: JobErrorCode.RecoveryExhausted,
          message: `Job ${id} was taken back from a dead or hung worker ${job.recoveryCount} time(s), the limit set by recovery.maximumRetries; it is failed so that it cannot loop forever.`,
        };
        this.finish(job, JobStatus.Failed, options.now, options.retention);
        report.exhausted.push(id);
      } else {
        job.recoveryCount++;
        this.requeue(job, options.now);
        report.requeued.push(id);
      }
    }
    report.removedEntries = this.queue.dropStaleHead();
    if (report.requeued.length > 0) this.emit({ type: 'job-available' });
    return report;
  }

  async stats(now: number): Promise<JobStats> {
    this.assertOpen();
    this.retained.purgeExpired(now);
    const head = this.queue.head();
    return {
      counts: { ...this.counts },
      waiting: this.counts.Queued + this.counts.Scheduled,
      inProgress: this.counts.InProgress,
      oldestWaitingAgeMs: head && head.dueAt <= now ? now - head.dueAt : null,
    };
  }

  async listJobs(options: ListJobsOptions): Promise<Job[]> {
    this.assertOpen();
    this.retained.purgeExpired(Date.now());
    const terminal = isTerminal(options.status);
    return [...this.jobs.values()]
      .filter((job) => job.status === options.status)
      .sort((a, b) => (terminal ? (b.completedAt ?? 0) - (a.completedAt ?? 0) : a.seq - b.seq))
      .slice(0, options.limit)
      .map(copyJob);
  }

  async retryJob(id: string, options: { now: number }): Promise<RetryJobResult> {
    this.assertOpen();
    this.retained.purgeExpired(options.now);
    const job = this.jobs.get(id);
    if (!job) return { outcome: 'not-found' };
    if (job.status !== JobStatus.Failed && job.status !== JobStatus.Canceled) {
      return { outcome: 'not-retryable', job: copyJob(job) };
    }
    this.setStatus(job, JobStatus.Queued);
    this.retained.revived(job);
    // Ordered as a new submission, as in the Redis store.
    job.seq = this.sequence++;
    job.expiresAt = null;
    job.retryCount = 0;
    job.recoveryCount = 0;
    job.cancelRequested = false;
    job.progress = null;
    job.result = null;
    job.startedAt = null;
    job.completedAt = null;
    job.lastUpdatedAt = options.now;
    this.queue.enqueue(job, options.now);
    this.emit({ type: 'job-available' });
    return { outcome: 'requeued', job: copyJob(job) };
  }

  async purgeJobs(options: PurgeJobsOptions): Promise<string[]> {
    this.assertOpen();
    assertPurgeableStatus(options.status);
    this.retained.purgeExpired(options.now);
    const purged = [...this.jobs.values()]
      .filter((job) => job.status === options.status && (job.completedAt ?? Infinity) < options.finishedBefore)
      .sort((a, b) => a.completedAt! - b.completedAt!)
      .slice(0, Math.max(0, options.limit));
    // Their expiry heap entries go stale: purgeExpired skips entries of missing jobs.
    if (!options.dryRun) for (const job of purged) this.retained.forget(job);
    return purged.map((job) => job.id);
  }

  async ping(): Promise<void> {
    this.assertOpen();
  }

  /** What the store holds against its caps, for the health indicator. */
  override diagnostics(): Record<string, unknown> {
    return this.retained.diagnostics();
  }

  subscribe(listener: StoreEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw storeClosedError(this.type);
  }

  private leased(lease: Lease): StoredJob | undefined {
    const job = this.jobs.get(lease.jobId);
    if (!job || job.status !== JobStatus.InProgress || job.leaseToken !== lease.token) return undefined;
    return job;
  }

  private setStatus(job: StoredJob, status: JobStatus): void {
    this.counts[job.status]--;
    this.counts[status]++;
    if (job.status === JobStatus.InProgress) this.inProgress.delete(job.id);
    if (status === JobStatus.InProgress) this.inProgress.add(job.id);
    job.status = status;
  }

  private leaveProgress(job: StoredJob, status: JobStatus, now: number): void {
    this.setStatus(job, status);
    job.leaseToken = null;
    job.leaseExpiresAt = null;
    job.workerId = null;
    job.lastUpdatedAt = now;
  }

  /**
   * InProgress -> Queued (release, recovery), at the head of the queue: it takes the due time of the
   * job due the longest when that one is due already, else now (as the Redis store does).
   */
  private requeue(job: StoredJob, now: number): void {
    this.leaveProgress(job, JobStatus.Queued, now);
    job.startedAt = null;
    job.retryDelayUntil = null;
    const head = this.queue.head();
    this.queue.enqueue(job, head && head.dueAt < now ? head.dueAt : now);
    this.emit({ type: 'job-available' });
  }

  private finish(job: StoredJob, status: JobStatus, now: number, retention: Retention): void {
    this.leaveProgress(job, status, now);
    job.completedAt = now;
    job.retryDelayUntil = null;
    job.expiresAt = now + (status === JobStatus.Failed ? retention.failedTtlMs : retention.completedTtlMs);
    this.retained.finishedJob(job);
    this.emit({ type: 'job-finished', jobId: job.id });
  }

  private emit(event: StoreEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A listener's failure is its own; the store's state is already consistent.
      }
    }
  }
}

