import type { Job } from '../../job/index.js';

/** A job as the memory store keeps it: the Job, plus what only the store needs. */
export interface StoredJob extends Job {
  leaseToken: string | null;
  /** When a terminal job is dropped (retention); null while the job is live. */
  expiresAt: number | null;
  /** Submission order, the tie-breaker among jobs due at the same time. */
  seq: number;
  /** Identifies the job's current entry in the status index (status-index.ts); older entries are stale. */
  statusSeq: number;
  /** Bumped whenever the job (re)enters the queue; heap entries of older versions are stale. */
  queueVersion: number;
  /** What the job counts against maxRetainedBytes: requestBytes, plus outcomeSize once finished. */
  bytes: number;
  /** requestSize, worked out at submit (and again when the payload is dropped). */
  requestBytes: number;
}
