import { nextRetryAt } from '../../lib/job/retry-policy.js';

const policy = { retryDelayBaseSeconds: 2, maxRetryDelaySeconds: 300 };
const now = 1_000_000;
const highest = () => 0;
const lowest = () => 1 - Number.EPSILON;

describe('nextRetryAt (the retry decision)', () => {
  it('schedules retry k+1 at now plus its backoff when the error is retryable and retries are left', () => {
    // Retry 2 of 3: d = 2 s * 2^1 = 4 s, jittered within [2 s, 4 s].
    const job = { retryCount: 1, maxRetries: 3 };
    expect(nextRetryAt(job, true, policy, now, highest)).toBe(now + 4000);
    expect(nextRetryAt(job, true, policy, now, lowest)).toBe(now + 2000);
  });

  it('fails now (null) when the error is not retryable, even with retries left', () => {
    expect(nextRetryAt({ retryCount: 0, maxRetries: 3 }, false, policy, now, highest)).toBeNull();
  });

  it('fails now (null) once the job has used all its retries', () => {
    expect(nextRetryAt({ retryCount: 3, maxRetries: 3 }, true, policy, now, highest)).toBeNull();
    expect(nextRetryAt({ retryCount: 0, maxRetries: 0 }, true, policy, now, highest)).toBeNull();
  });

  it('caps the delay at maxRetryDelaySeconds', () => {
    expect(nextRetryAt({ retryCount: 9, maxRetries: 10 }, true, policy, now, highest)).toBe(now + 300_000);
  });
});
