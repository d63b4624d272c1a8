import type { Job } from '../job/index.js';
import type { Lease } from '../store/job-store.js';

/** How an attempt ended, from the worker's point of view. */
export type AttemptOutcome =
  | { kind: 'returned'; value: unknown }
  | { kind: 'threw'; error: unknown }
  | { kind: 'timed-out' }
  | { kind: 'canceled' }
  /** The store took the lease back (recovery, expiry): someone else owns the job now. */
  | { kind: 'lease-lost' }
  /** Shutdown grace period over: hand the job back. */
  | { kind: 'released' };

/** An attempt this worker runs: what the attempt runner, the lease keeper and shutdown act on. */
export interface RunningJob {
  job: Job;
  lease: Lease;
  /** Aborts the handler's `abortSignal` (ctx.signal) when the attempt is interrupted. */
  abortController: AbortController;
  /** Ends the attempt now with the given outcome (first call wins). */
  interrupt(outcome: AttemptOutcome): void;
  /** Gives the attempt's concurrency slot back (once): as soon as its outcome is known. */
  freeSlot(): void;
  /** Settles once the attempt's outcome is written to the store. */
  done: Promise<void>;
}

/** The reason the handler's abort signal carries (an AbortError naming the job and the cause). */
export function abortReason(outcome: AttemptOutcome, job: Job): Error {
  const reasons: Partial<Record<AttemptOutcome['kind'], string>> = {
    'timed-out': `Job ${job.id} timed out`,
    canceled: `Job ${job.id} was canceled`,
    'lease-lost': `Job ${job.id} was taken back from this worker`,
    released: `Job ${job.id} was released at shutdown`,
  };
  const error = new Error(reasons[outcome.kind] ?? `Job ${job.id} was aborted`);
  error.name = 'AbortError';
  return error;
}
