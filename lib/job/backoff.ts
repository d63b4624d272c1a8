export interface BackoffPolicy {
  retryDelayBaseSeconds: number;
  maxRetryDelaySeconds: number;
}

/**
 * Delay before retry `k` (1-based), with jitter: `d = min(base * 2^(k-1), maxRetryDelaySeconds)` seconds,
 * then a uniformly random point of `[d / 2, d]`, so that jobs which failed together (a downstream
 * outage) do not all come due at the same instant. Never above `d`, never below `d / 2`.
 * `random` returns a number in [0, 1); tests pass their own.
 */
export function retryDelayMs(retry: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  if (!Number.isInteger(retry) || retry < 1) {
    throw new RangeError(`retry must be an integer >= 1, got ${retry}`);
  }
  const seconds = Math.min(policy.retryDelayBaseSeconds * 2 ** (retry - 1), policy.maxRetryDelaySeconds);
  return Math.round(seconds * 1000 * (1 - random() / 2));
}
