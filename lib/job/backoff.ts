export interface BackoffPolicy {
  retryDelayBaseSeconds: number;
  maxRetryDelaySeconds: number;
}

/**
 * Delay before retry `k` (1-based): `base * 2^(k-1)` seconds, capped at `maxRetryDelaySeconds`.
 * With base 2: 2 s, 4 s, 8 s, ...
 */
export function retryDelayMs(retry: number, policy: BackoffPolicy): number {
  if (!Number.isInteger(retry) || retry < 1) {
    throw new RangeError(`retry must be an integer >= 1, got ${retry}`);
  }
  const seconds = Math.min(policy.retryDelayBaseSeconds * 2 ** (retry - 1), policy.maxRetryDelaySeconds);
  return Math.round(seconds * 1000);
}
