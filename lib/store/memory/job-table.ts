import { JOB_STATUSES, JobStatus } from '../../job/index.js';
import type { Lease, Retention, StoreEvent, StoreEventListener } from '../job-store.js';
import { DueQueue } from './due-queue.js';
import { RetainedJobs, type JobRecords, type MemoryStoreLimits } from './retained-jobs.js';
import type { StoredJob } from './stored-job.js';

/**
 * The memory store's records and their indexes (by id, by idempotency key, by status, the due queue,
 * retention), kept in step by the transitions between statuses, which also tell the listeners.
 */
export class JobTable implements JobRecords {
  readonly jobs = new Map<string, StoredJob>();
  readonly idempotencyIndex = new Map<string, string>();
  readonly queue = new DueQueue(this.jobs);
  readonly inProgress = new Set<string>();
  readonly counts = Object.fromEntries(JOB_STATUSES.map((status) => [status, 0])) as Record<JobStatus, number>;
  readonly listeners = new Set<StoreEventListener>();
  readonly retained: RetainedJobs;

  constructor(limits: MemoryStoreLimits) {
    this.retained = new RetainedJobs(this, limits);
  }

  /** The job under this lease, when the lease is still its own. */
  leased(lease: Lease): StoredJob | undefined {
    const job = this.jobs.get(lease.jobId);
    if (!job || job.status !== JobStatus.InProgress || job.leaseToken !== lease.token) return undefined;
    return job;
  }

  setStatus(job: StoredJob, status: JobStatus): void {
    this.counts[job.status]--;
    this.counts[status]++;
    if (job.status === JobStatus.InProgress) this.inProgress.delete(job.id);
    if (status === JobStatus.InProgress) this.inProgress.add(job.id);
    job.status = status;
  }

  leaveProgress(job: StoredJob, status: JobStatus, now: number): void {
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
  requeue(job: StoredJob, now: number): void {
    this.leaveProgress(job, JobStatus.Queued, now);
    job.startedAt = null;
    job.retryDelayUntil = null;
    const head = this.queue.head();
    this.queue.enqueue(job, head && head.dueAt < now ? head.dueAt : now);
    this.emit({ type: 'job-available' });
  }

  finish(job: StoredJob, status: JobStatus, now: number, retention: Retention): void {
    this.leaveProgress(job, status, now);
    job.completedAt = now;
    job.retryDelayUntil = null;
    job.expiresAt = now + (status === JobStatus.Failed ? retention.failedTtlMs : retention.completedTtlMs);
    this.retained.finishedJob(job);
    this.emit({ type: 'job-finished', jobId: job.id });
  }

  emit(event: StoreEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A listener's failure is its own; the store's state is already consistent.
      }
    }
  }
}
