import type { JobStatus } from '../../job/index.js';
import { idempotencyScopeKey } from '../idempotency-scope.js';
import { MinHeap } from './min-heap.js';
import { DEFAULT_MAX_RETAINED_BYTES, DEFAULT_MAX_RETAINED_JOBS, outcomeSize } from './retained-size.js';
import type { StoredJob } from './stored-job.js';

/** The memory store's caps (`store: { type: 'memory', maxRetainedJobs, maxRetainedBytes }`). */
export interface MemoryStoreLimits {
  maxRetainedJobs?: number;
  maxRetainedBytes?: number;
}

interface ExpiryEntry {
  id: string;
  expiresAt: number;
}

/** The records of the memory store that retention and the caps act on. */
export interface JobRecords {
  jobs: Map<string, StoredJob>;
  idempotencyIndex: Map<string, string>;
  counts: Record<JobStatus, number>;
}

/**
 * Retention and caps of the memory store: finished jobs expire after their retention, and the store
 * keeps at most maxRetainedJobs jobs and maxRetainedBytes bytes: beyond either, the oldest finished
 * jobs are evicted before their retention ends; live jobs never are.
 */
export class RetainedJobs {
  /** Finished jobs in the order they finished: the eviction order. */
  private readonly finished = new Map<string, StoredJob>();
  private expiries = newExpiryHeap();
  private retainedBytes = 0;
  private readonly maxRetainedJobs: number;
  private readonly maxRetainedBytes: number;

  constructor(
    private readonly records: JobRecords,
    limits: MemoryStoreLimits,
  ) {
    this.maxRetainedJobs = limits.maxRetainedJobs ?? DEFAULT_MAX_RETAINED_JOBS;
    this.maxRetainedBytes = limits.maxRetainedBytes ?? DEFAULT_MAX_RETAINED_BYTES;
  }

  /** Counts a new job's bytes. */
  added(job: StoredJob): void {
    this.retainedBytes += job.bytes;
  }

  /** Starts a job's retention once it finished (its expiresAt set), and evicts what no longer fits. */
  finishedJob(job: StoredJob): void {
    this.expiries.push({ id: job.id, expiresAt: job.expiresAt! });
    // A result or an error changes what the job holds.
    const bytes = job.requestBytes + outcomeSize(job);
    this.retainedBytes += bytes - job.bytes;
    job.bytes = bytes;
    this.finished.set(job.id, job);
    this.makeRoom(0, 0);
    // Evicted jobs leave their expiry entries behind: rebuilt once they outnumber the finished jobs
    // (amortised O(log n) per finish), so that the heap stays as bounded as the jobs.
    if (this.expiries.size > 2 * this.finished.size + 1024) this.rebuildExpiries();
  }

  /** A finished job that is live again (retried): no longer evictable; its expiry entry goes stale. */
  revived(job: StoredJob): void {
    this.finished.delete(job.id);
  }

  /**
   * Evicts the oldest finished jobs until `jobs` more jobs of `bytes` more bytes fit under the caps.
   * Returns why they do not fit when only live jobs are left, else null.
   */
  makeRoom(jobs: number, bytes: number): string | null {
    const { jobs: all } = this.records;
    for (const job of this.finished.values()) {
      if (all.size + jobs <= this.maxRetainedJobs && this.retainedBytes + bytes <= this.maxRetainedBytes) break;
      this.forget(job);
    }
    if (all.size + jobs > this.maxRetainedJobs) {
      return `The memory job store is full: it holds ${all.size} live jobs, the limit set by store.maxRetainedJobs (finished jobs were evicted; live ones never are). Retry later; raise store.maxRetainedJobs, lower worker.maximumQueueSize, or use the Redis store.`;
    }
    if (this.retainedBytes + bytes > this.maxRetainedBytes) {
      return `The memory job store is full: its live jobs hold ${this.retainedBytes} bytes and this one needs ${bytes}, over store.maxRetainedBytes (${this.maxRetainedBytes}; finished jobs were evicted, live ones never are). Retry later; raise store.maxRetainedBytes, lower worker.maximumQueueSize, or use the Redis store.`;
    }
    return null;
  }

  purgeExpired(now: number): void {
    for (let entry = this.expiries.peek(); entry && entry.expiresAt <= now; entry = this.expiries.peek()) {
      this.expiries.pop();
      const job = this.records.jobs.get(entry.id);
      if (!job || job.expiresAt !== entry.expiresAt) continue;
      this.forget(job);
    }
  }

  /** Deletes a terminal job and its idempotency key. */
  forget(job: StoredJob): void {
    const { jobs, idempotencyIndex, counts } = this.records;
    jobs.delete(job.id);
    this.finished.delete(job.id);
    this.retainedBytes -= job.bytes;
    counts[job.status]--;
    if (job.idempotencyKey === null) return;
    const indexKey = idempotencyScopeKey(job);
    if (idempotencyIndex.get(indexKey) === job.id) idempotencyIndex.delete(indexKey);
  }

  /** What the store holds against its caps, for the health indicator. */
  diagnostics(): Record<string, unknown> {
    return {
      retainedJobs: this.records.jobs.size,
      retainedBytes: this.retainedBytes,
      maxRetainedJobs: this.maxRetainedJobs,
      maxRetainedBytes: this.maxRetainedBytes,
    };
  }

  private rebuildExpiries(): void {
    this.expiries = newExpiryHeap();
    for (const job of this.finished.values()) this.expiries.push({ id: job.id, expiresAt: job.expiresAt! });
  }
}

function newExpiryHeap(): MinHeap<ExpiryEntry> {
  return new MinHeap<ExpiryEntry>((a, b) => a.expiresAt - b.expiresAt);
}
