import { Logger } from '@nestjs/common';
import { MEMORY_STORE_ACCEPTS_AGAIN, memoryStoreFullOfBytes, memoryStoreFullOfJobs } from '../../errors/messages.js';
import type { JobStatus } from '../../job/index.js';
import { idempotencyScopeKey } from '../idempotency-scope.js';
import type { StoreLogger } from '../redis/redis-connections.js';
import { MinHeap } from './min-heap.js';
import { DEFAULT_MAX_RETAINED_BYTES, DEFAULT_MAX_RETAINED_JOBS, outcomeSize } from './retained-size.js';
import type { StoredJob } from './stored-job.js';

/** The memory store's caps (`store: { type: 'memory', maxRetainedJobs, maxRetainedBytes }`). */
export interface MemoryStoreLimits {
  maxRetainedJobs?: number;
  maxRetainedBytes?: number;
  /** @internal Where a full store is reported (once per outage). Default: Nest's Logger. */
  logger?: StoreLogger;
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
  /** The part of retainedBytes that eviction can free: the bytes of the finished jobs. */
  private finishedBytes = 0;
  private readonly maxRetainedJobs: number;
  private readonly maxRetainedBytes: number;
  private readonly logger: StoreLogger;
  /** Submits are being refused as store-full: logged once when it starts and once when it ends. */
  private full = false;

  constructor(
    private readonly records: JobRecords,
    limits: MemoryStoreLimits,
  ) {
    this.maxRetainedJobs = limits.maxRetainedJobs ?? DEFAULT_MAX_RETAINED_JOBS;
    this.maxRetainedBytes = limits.maxRetainedBytes ?? DEFAULT_MAX_RETAINED_BYTES;
    this.logger = limits.logger ?? new Logger('MemoryJobStore');
  }

  /** Live jobs alone fill the job cap: a submit is refused before its payload is copied and sized. */
  liveJobsFillCap(): boolean {
    return this.records.jobs.size - this.finished.size >= this.maxRetainedJobs;
  }

  /**
   * Makes room for one more job of `bytes`, evicting the oldest finished jobs as needed. Returns why it
   * cannot fit (evicting none) when it would not fit even with every finished job evicted, else null.
   */
  admit(bytes: number): string | null {
    if (!this.makeRoom(1, bytes)) return this.refuse(bytes);
    if (this.full) {
      this.full = false;
      this.logger.log(MEMORY_STORE_ACCEPTS_AGAIN);
    }
    return null;
  }

  /** Why a submit is refused; the numbers and the advice go to the log, once per outage. */
  refuse(bytes: number): string {
    const liveJobs = this.records.jobs.size - this.finished.size;
    const reason =
      liveJobs >= this.maxRetainedJobs
        ? memoryStoreFullOfJobs(liveJobs, this.maxRetainedJobs)
        : memoryStoreFullOfBytes(this.retainedBytes - this.finishedBytes, bytes, this.maxRetainedBytes);
    if (!this.full) {
      this.full = true;
      this.logger.warn(reason);
    }
    return reason;
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
    // Room made before the job joins the finished ones: it is never evicted as it finishes (its waiters
    // would find no job). When the others cannot make room, evicts none: over the caps until the next
    // submit or finish.
    this.makeRoom(0, 0);
    this.finished.set(job.id, job);
    this.finishedBytes += bytes;
    // Evicted jobs leave their expiry entries behind: rebuilt once they outnumber the finished jobs
    // (amortised O(log n) per finish), so that the heap stays as bounded as the jobs.
    if (this.expiries.size > 2 * this.finished.size + 1024) this.rebuildExpiries();
  }

  /** A finished job that is live again (retried): no longer evictable; its expiry entry goes stale. */
  revived(job: StoredJob): void {
    if (this.finished.delete(job.id)) this.finishedBytes -= job.bytes;
  }

  /**
   * Evicts the oldest finished jobs until `jobs` more jobs of `bytes` more bytes fit under the caps.
   * When they would not fit even with every finished job evicted, evicts none and returns false.
   */
  private makeRoom(jobs: number, bytes: number): boolean {
    const all = this.records.jobs;
    const fits = (evictable: number, evictableBytes: number) =>
      all.size - evictable + jobs <= this.maxRetainedJobs &&
      this.retainedBytes - evictableBytes + bytes <= this.maxRetainedBytes;
    if (!fits(this.finished.size, this.finishedBytes)) return false;
    for (const job of this.finished.values()) {
      if (fits(0, 0)) break;
      this.forget(job);
    }
    return true;
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
    if (this.finished.delete(job.id)) this.finishedBytes -= job.bytes;
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
