import { isWaiting, JOB_STATUSES, JobStatus } from '../../job/index.js';
import type { Lease, NameStats, Retention, StoreEvent, StoreEventListener } from '../job-store.js';
import { DueQueue } from './due-queue.js';
import { RetainedJobs, type JobRecords, type MemoryStoreLimits } from './retained-jobs.js';
import { StatusIndex } from './status-index.js';
import type { StoredJob } from './stored-job.js';

/** One job name's live jobs: its counts and its own due queue, so a claim looks only at its names' jobs. */
export interface NameState {
  /** Queued + Scheduled. */
  waiting: number;
  inProgress: number;
  readonly queue: DueQueue;
}

/**
 * The memory store's records and their indexes (by id, by idempotency key, by name with its due queue,
 * by status, retention), kept in step by the transitions between statuses, which also tell the listeners.
 */
export class JobTable implements JobRecords {
  readonly jobs = new Map<string, StoredJob>();
  readonly idempotencyIndex = new Map<string, string>();
  /** Per job name. An entry whose counts fall to 0 may be dropped (see pruneNames). */
  readonly names = new Map<string, NameState>();
  readonly inProgress = new Set<string>();
  readonly counts = Object.fromEntries(JOB_STATUSES.map((status) => [status, 0])) as Record<JobStatus, number>;
  readonly byStatus = new StatusIndex(this.jobs, this.counts);
  readonly listeners = new Set<StoreEventListener>();
  readonly retained: RetainedJobs;

  constructor(limits: MemoryStoreLimits) {
    this.retained = new RetainedJobs(this, limits);
  }

  nameState(name: string): NameState {
    let state = this.names.get(name);
    if (!state) {
      state = { waiting: 0, inProgress: 0, queue: new DueQueue(this.jobs) };
      this.names.set(name, state);
    }
    return state;
  }

  /**
   * Per name with a live job: its counts and the age of its job due the longest (workers left at 0).
   * Drops the state of names with no live job on the way (their queues hold only stale entries).
   */
  nameStats(now: number): Record<string, NameStats> {
    const names: Record<string, NameStats> = {};
    for (const [name, state] of this.names) {
      if (state.waiting === 0 && state.inProgress === 0) {
        this.names.delete(name);
        continue;
      }
      const head = state.queue.head();
      names[name] = {
        waiting: state.waiting,
        inProgress: state.inProgress,
        oldestWaitingAgeMs: head && head.dueAt <= now ? now - head.dueAt : null,
        workers: 0,
      };
    }
    return names;
  }

  /** A new job, Queued (already set on it), due at `now`. */
  add(job: StoredJob, now: number): void {
    this.jobs.set(job.id, job);
    this.counts.Queued++;
    const state = this.nameState(job.name);
    state.waiting++;
    this.byStatus.enter(job, now);
    state.queue.enqueue(job, now);
  }

  /** The job under this lease, when the lease is still its own. */
  leased(lease: Lease): StoredJob | undefined {
    const job = this.jobs.get(lease.jobId);
    if (!job || job.status !== JobStatus.InProgress || job.leaseToken !== lease.token) return undefined;
    return job;
  }

  setStatus(job: StoredJob, status: JobStatus, now: number): void {
    this.counts[job.status]--;
    this.counts[status]++;
    const state = this.nameState(job.name);
    if (isWaiting(job.status)) state.waiting--;
    else if (job.status === JobStatus.InProgress) {
      state.inProgress--;
      this.inProgress.delete(job.id);
    }
    if (isWaiting(status)) state.waiting++;
    else if (status === JobStatus.InProgress) {
      state.inProgress++;
      this.inProgress.add(job.id);
    }
    job.status = status;
    this.byStatus.enter(job, now);
  }

  leaveProgress(job: StoredJob, status: JobStatus, now: number): void {
    this.setStatus(job, status, now);
    job.leaseToken = null;
    job.leaseExpiresAt = null;
    job.workerId = null;
    job.lastUpdatedAt = now;
  }

  /**
   * InProgress -> Queued (release, recovery), at the head of its name's queue: it takes the due time of
   * the job of that name due the longest when that one is due already, else now (as the Redis store does).
   */
  requeue(job: StoredJob, now: number): void {
    this.leaveProgress(job, JobStatus.Queued, now);
    job.startedAt = null;
    job.retryDelayUntil = null;
    const queue = this.nameState(job.name).queue;
    const head = queue.head();
    queue.enqueue(job, head && head.dueAt < now ? head.dueAt : now);
    this.emit({ type: 'job-available', name: job.name });
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
