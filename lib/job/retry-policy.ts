import { retryDelayMs, type BackoffPolicy } from './backoff.js';
import type { Job } from './job.js';

/**
 * When a failed attempt runs again: at `now` plus the backoff of the next retry, if the error allows a
 * retry (`retryable`: not a NonRetryableError, not a cancellation) and the job has retries left;
 * otherwise null, and the job fails now. Pure: the clock and the randomness come in as arguments.
 */
export function nextRetryAt(
  job: Pick<Job, 'retryCount' | 'maxRetries'>,
  retryable: boolean,
  policy: BackoffPolicy,
  now: number,
  random: () => number = Math.random,
): number | null {
  if (!retryable || job.retryCount >= job.maxRetries) return null;
  return now + retryDelayMs(job.retryCount + 1, policy, random);
}
