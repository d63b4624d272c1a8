import type { Job } from '../../job/index.js';

/** Default `store.maxRetainedJobs` of the memory store. */
export const DEFAULT_MAX_RETAINED_JOBS = 10_000;

/** Default `store.maxRetainedBytes` of the memory store: 256 MiB. */
export const DEFAULT_MAX_RETAINED_BYTES = 256 * 1024 * 1024;

/** What one job record costs besides its JSON values: ids, times, counters, index entries. */
const RECORD_BYTES = 1024;

/**
 * The bytes the memory store counts for a job: its JSON values as JSON text, plus a fixed cost per
 * record. An estimate of what it keeps alive, not a measure of the heap; the caps compare it. In two
 * parts, so that the payload is sized once, at submit: what the request brought (payload, captured
 * request data) and what the runs added (result, error, progress).
 */
export function requestSize(job: Job): number {
  return (
    RECORD_BYTES +
    jsonLength(job.payload) +
    stringsLength(job.headers) +
    stringsLength(job.routeParams) +
    jsonLength(job.queryParams)
  );
}

export function outcomeSize(job: Job): number {
  const { error } = job;
  return (
    jsonLength(job.result) +
    jsonLength(job.progress) +
    (error ? error.code.length + error.message.length + (error.stack?.length ?? 0) : 0)
  );
}

/**
 * The length of the value's JSON text. JSON.stringify is native: ~2 µs for a 1 KB payload, where a
 * walk in JavaScript took ~30 µs. (cloneJson has already walked the value, so its depth is no risk.)
 */
function jsonLength(value: unknown): number {
  return value === null ? 0 : JSON.stringify(value).length;
}

/** Headers and route parameters are flat string maps: no serialisation needed to size them. */
function stringsLength(values: Record<string, string>): number {
  let length = 0;
  for (const key in values) length += key.length + values[key]!.length + 6;
  return length;
}

/**
 * Boot warnings for caps that waiting jobs can fill before `worker.maximumQueueSize` is reached: clients
 * would then get 503 (store full) where the queue limit promises 429.
 */
export function capsBelowQueueLimit(
  caps: { maxRetainedJobs?: number; maxRetainedBytes?: number },
  maximumQueueSize: number,
  bodyLimitBytes: number,
): string[] {
  const maxJobs = caps.maxRetainedJobs ?? DEFAULT_MAX_RETAINED_JOBS;
  const maxBytes = caps.maxRetainedBytes ?? DEFAULT_MAX_RETAINED_BYTES;
  const consequence =
    'can fill the memory store before the queue is full: clients then get 503 (store full) instead of 429 (queue full).';
  const warnings: string[] = [];
  if (maximumQueueSize > maxJobs) {
    warnings.push(
      `worker.maximumQueueSize (${maximumQueueSize}) is above store.maxRetainedJobs (${maxJobs}): waiting jobs ${consequence} ` +
        'Raise store.maxRetainedJobs or lower worker.maximumQueueSize.',
    );
  }
  // Only for a byte cap set on purpose: the defaults fill it only with every payload at the body limit
  // (documented), and a warning at every default boot would teach users to skip warnings.
  if (caps.maxRetainedBytes !== undefined && maximumQueueSize * bodyLimitBytes > maxBytes) {
    warnings.push(
      `worker.maximumQueueSize (${maximumQueueSize}) × http.bodyLimitBytes (${bodyLimitBytes}) is above store.maxRetainedBytes (${maxBytes}): ` +
        `waiting jobs with large payloads ${consequence} Raise store.maxRetainedBytes, or lower worker.maximumQueueSize or http.bodyLimitBytes.`,
    );
  }
  return warnings;
}
