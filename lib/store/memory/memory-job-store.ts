import { randomUUID } from 'node:crypto';
import { isTerminal, JobErrorCode, JobStatus, type Job, type JobError, type JsonValue } from '../../job/index.js';
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
  type JobPage,
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
  type StoreEventListener,
  type WorkerRegistration,
} from '../job-store.js';
import { cloneJson, copyJob, newQueuedJob } from '../../job/job-records.js';
import { idempotencyScopeKey } from '../idempotency-scope.js';
import { storeClosedError } from '../store-closed.js';
import { firstDue, type DueQueue } from './due-queue.js';
import { JobTable } from './job-table.js';
import type { MemoryStoreLimits } from './retained-jobs.js';
import { requestSize } from './retained-size.js';
import type { StoredJob } from './stored-job.js';
import { WorkerRegistrations } from './worker-registrations.js';

export type { MemoryStoreLimits } from './retained-jobs.js';

/**
 * The embedded store: one process, nothing durable across restarts. It hands out copies, never the
 * live records. The records and their indexes are a JobTable (job-table.ts); due jobs wait in one
 * DueQueue per name (due-queue.ts), so a claim looks only at the names it asks for; retention and the caps are RetainedJobs' (retained-jobs.ts): at most
 * maxRetainedJobs jobs and maxRetainedBytes bytes, evicting the oldest finished jobs first; live jobs
 * never are.
 */
export class MemoryJobStore extends JobStore {
  readonly type = 'memory';

  /** The records, their indexes and the transitions between statuses (job-table.ts). */
  private readonly table: JobTable;
  private readonly workers = new WorkerRegistrations();
  private sequence = 0;
  private recoveryLockUntil = 0;
  private closed = false;

  constructor(limits: MemoryStoreLimits = {}) {
    super();
    this.table = new JobTable(limits);
  }

  async init(): Promise<void> {
    this.closed = false;
  }

  async createJob(input: NewJob, options: CreateJobOptions): Promise<CreateJobResult> {
    this.assertOpen();
    this.table.retained.purgeExpired(options.now);
    const indexKey = input.idempotencyKey === null ? null : idempotencyScopeKey(input);
    // The job the key points to, else one with the chosen id: a new job never overwrites an old one.
    const keyed = indexKey === null ? undefined : this.table.idempotencyIndex.get(indexKey);
    const existing = (keyed === undefined ? undefined : this.table.jobs.get(keyed)) ?? this.table.jobs.get(input.id);
    if (existing) {
      return { outcome: isReplayOf(existing, input) ? 'replayed' : 'conflict', job: copyJob(existing) };
    }
    const waiting = this.table.counts.Queued + this.table.counts.Scheduled;
    if (waiting >= options.maximumQueueSize) return { outcome: 'queue-full', waiting };

    // Refused before the payload is copied and sized when live jobs alone fill the job cap.
    if (this.table.retained.liveJobsFillCap()) return { outcome: 'store-full', reason: this.table.retained.refuse(0) };
    const queued = newQueuedJob(input, options.now);
    const bytes = requestSize(queued);
    const refused = this.table.retained.admit(bytes);
    if (refused !== null) return { outcome: 'store-full', reason: refused };
    const job: StoredJob = Object.assign(queued, {
      leaseToken: null,
      expiresAt: null,
      seq: this.sequence++,
      statusSeq: 0,
      queueVersion: 0,
      bytes,
      requestBytes: bytes,
    });
    this.table.add(job, options.now);
    this.table.retained.added(job);
    if (indexKey !== null) this.table.idempotencyIndex.set(indexKey, job.id);
    this.table.emit({ type: 'job-available', name: job.name });
    // The caller's own payload rather than a second copy of the stored one (a third of a submit's cost).
    return { outcome: 'created', job: { ...copyJob({ ...job, payload: null }), payload: input.payload } };
  }

  async getJob(id: string): Promise<Job | null> {
    this.assertOpen();
    const job = this.table.jobs.get(id);
    if (!job || (job.expiresAt !== null && job.expiresAt <= Date.now())) return null;
    return copyJob(job);
  }

  async claimDueJobs(options: ClaimOptions): Promise<ClaimedJob[]> {
    this.assertOpen();
    this.table.retained.purgeExpired(options.now);
    let limit = options.limit;
    if (options.maxConcurrentJobs !== null) {
      limit = Math.min(limit, options.maxConcurrentJobs - this.table.inProgress.size);
    }
    const queues: DueQueue[] = [];
    for (const name of options.names) {
      const queue = this.table.names.get(name)?.queue;
      if (queue) queues.push(queue);
    }
    const claimed: ClaimedJob[] = [];
    while (claimed.length < limit) {
      const next = firstDue(queues, options.now);
      if (!next) break;
      const job = next.takeHead();
      const token = randomUUID();
      this.table.setStatus(job, JobStatus.InProgress, options.now);
      job.startedAt = options.now;
      job.lastUpdatedAt = options.now;
      job.retryDelayUntil = null;
      job.workerId = options.workerId;
      job.leaseToken = token;
      job.leaseExpiresAt = options.now + options.leaseMs;
      claimed.push({ job: copyJob(job), lease: { jobId: job.id, name: job.name, token } });
    }
    return claimed;
  }

  async renewLeases(leases: Lease[], options: { now: number; leaseMs: number }): Promise<RenewResult> {
    this.assertOpen();
    const result: RenewResult = { lost: [], cancelRequested: [] };
    for (const lease of leases) {
      const job = this.table.leased(lease);
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
    const job = this.table.leased(lease);
    if (!job) return false;
    job.progress = cloneJson(progress);
    job.lastUpdatedAt = now;
    return true;
  }

  async completeJob(
    lease: Lease,
    result: JsonValue | null,
    options: { now: number; retention: Retention },
  ): Promise<CompleteOutcome> {
    this.assertOpen();
    const job = this.table.leased(lease);
    if (!job) return 'lease-lost';
    job.result = cloneJson(result);
    job.error = null;
    if (options.retention.dropPayloadOnFinish) {
      job.payload = null;
      job.headers = {};
      job.queryParams = {};
      job.requestBytes = requestSize(job);
    }
    this.table.finish(job, JobStatus.Completed, options.now, options.retention);
    return 'completed';
  }

  async failJob(lease: Lease, error: JobError, options: FailOptions): Promise<FailOutcome> {
    this.assertOpen();
    const job = this.table.leased(lease);
    if (!job) return 'lease-lost';
    job.error = structuredClone(error);
    if (job.cancelRequested) {
      this.table.finish(job, JobStatus.Canceled, options.now, options.retention);
      return 'canceled';
    }
    if (options.retryAt === null) {
      this.table.finish(job, JobStatus.Failed, options.now, options.retention);
      return 'failed';
    }
    this.table.leaveProgress(job, JobStatus.Scheduled, options.now);
    job.retryCount++;
    job.retryDelayUntil = options.retryAt;
    this.table.nameState(job.name).queue.enqueue(job, options.retryAt);
    this.table.emit({ type: 'job-available', name: job.name, dueAt: options.retryAt });
    return 'scheduled';
  }

  async releaseJob(lease: Lease, options: { now: number; retention: Retention }): Promise<ReleaseOutcome> {
    this.assertOpen();
    const job = this.table.leased(lease);
    if (!job) return 'lease-lost';
    if (job.cancelRequested) {
      this.table.finish(job, JobStatus.Canceled, options.now, options.retention);
      return 'canceled';
    }
    // Announced (requeue): as on Redis, a worker with free slots takes it at once.
    this.table.requeue(job, options.now);
    return 'released';
  }

  async cancelJob(id: string, options: { now: number; retention: Retention }): Promise<CancelResult> {
    this.assertOpen();
    this.table.retained.purgeExpired(options.now);
    const job = this.table.jobs.get(id);
    if (!job) return { outcome: 'not-found' };
    if (isTerminal(job.status)) return { outcome: 'already-terminal', job: copyJob(job) };
    if (job.status === JobStatus.InProgress) {
      if (!job.cancelRequested) {
        job.cancelRequested = true;
        job.lastUpdatedAt = options.now;
        this.table.emit({ type: 'cancel-requested', jobId: id });
      }
      return { outcome: 'cancel-requested', job: copyJob(job) };
    }
    job.queueVersion++;
    this.table.finish(job, JobStatus.Canceled, options.now, options.retention);
    return { outcome: 'canceled', job: copyJob(job) };
  }

  async recoverJobs(options: RecoverJobsOptions): Promise<RecoveryReport | null> {
    this.assertOpen();
    if (this.recoveryLockUntil > options.now) return null;
    this.recoveryLockUntil = options.now + options.lockMs;
    this.table.retained.purgeExpired(options.now);
    const report: RecoveryReport = { requeued: [], exhausted: [], canceled: [], removedEntries: 0 };
    for (const id of [...this.table.inProgress]) {
      const job = this.table.jobs.get(id)!;
      const leaseExpired = job.leaseExpiresAt !== null && job.leaseExpiresAt <= options.now;
      const overdue = job.startedAt !== null && options.now - job.startedAt >= options.maxInProgressMs;
      if (!leaseExpired && !overdue) continue;
      if (job.cancelRequested) {
        this.table.finish(job, JobStatus.Canceled, options.now, options.retention);
        report.canceled.push(id);
      } else if (job.recoveryCount >= options.maxRecoveries) {
        job.error = {
          code: JobErrorCode.RecoveryExhausted,
          message: `Job ${id} was taken back from a dead or hung worker ${job.recoveryCount} time(s), the limit set by recovery.maximumRetries; it is failed so that it cannot loop forever.`,
        };
        this.table.finish(job, JobStatus.Failed, options.now, options.retention);
        report.exhausted.push(id);
      } else {
        job.recoveryCount++;
        this.table.requeue(job, options.now);
        report.requeued.push(id);
      }
    }
    for (const state of this.table.names.values()) report.removedEntries += state.queue.dropStaleHead();
    return report;
  }

  async stats(now: number): Promise<JobStats> {
    this.assertOpen();
    this.table.retained.purgeExpired(now);
    const names = this.table.nameStats(now);
    this.workers.countInto(names, now);
    const ages = Object.values(names).map((stats) => stats.oldestWaitingAgeMs ?? -1);
    const oldest = Math.max(-1, ...ages);
    return {
      counts: { ...this.table.counts },
      waiting: this.table.counts.Queued + this.table.counts.Scheduled,
      inProgress: this.table.counts.InProgress,
      oldestWaitingAgeMs: oldest < 0 ? null : oldest,
      names,
    };
  }

  async registerWorker(registration: WorkerRegistration, options: { now: number; ttlMs: number }): Promise<void> {
    this.assertOpen();
    this.workers.register(registration, options);
  }

  async unregisterWorker(workerId: string): Promise<void> {
    this.assertOpen();
    this.workers.unregister(workerId);
  }

  async listJobs(options: ListJobsOptions): Promise<JobPage> {
    this.assertOpen();
    this.table.retained.purgeExpired(Date.now());
    const page = this.table.byStatus.list(options);
    return { jobs: page.jobs.map(copyJob), nextCursor: page.nextCursor };
  }

  async retryJob(id: string, options: { now: number }): Promise<RetryJobResult> {
    this.assertOpen();
    this.table.retained.purgeExpired(options.now);
    const job = this.table.jobs.get(id);
    if (!job) return { outcome: 'not-found' };
    if (job.status !== JobStatus.Failed && job.status !== JobStatus.Canceled) {
      return { outcome: 'not-retryable', job: copyJob(job) };
    }
    this.table.setStatus(job, JobStatus.Queued, options.now);
    this.table.retained.revived(job);
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
    this.table.nameState(job.name).queue.enqueue(job, options.now);
    this.table.emit({ type: 'job-available', name: job.name });
    return { outcome: 'requeued', job: copyJob(job) };
  }

  async purgeJobs(options: PurgeJobsOptions): Promise<string[]> {
    this.assertOpen();
    assertPurgeableStatus(options.status);
    this.table.retained.purgeExpired(options.now);
    const purged: StoredJob[] = [];
    for (const job of this.table.byStatus.oldestFirst(options.status)) {
      if (purged.length >= options.limit || job.completedAt! >= options.finishedBefore) break;
      if (options.name === undefined || job.name === options.name) purged.push(job);
    }
    // Their expiry heap entries go stale: purgeExpired skips entries of missing jobs.
    if (!options.dryRun) for (const job of purged) this.table.retained.forget(job);
    return purged.map((job) => job.id);
  }

  async ping(): Promise<void> {
    this.assertOpen();
  }

  /** What the store holds against its caps, for the health indicator. */
  override diagnostics(): Record<string, unknown> {
    return this.table.retained.diagnostics();
  }

  subscribe(listener: StoreEventListener): () => void {
    this.table.listeners.add(listener);
    return () => this.table.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.table.listeners.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw storeClosedError(this.type);
  }
}
