import type { Job, JsonValue } from './job.js';
import { JobStatus } from './job-status.js';

/** What a producer hands the store; the store adds status, counters and times. */
export interface NewJob extends Pick<
  Job,
  | 'id'
  | 'name'
  | 'payload'
  | 'headers'
  | 'routeParams'
  | 'queryParams'
  | 'owner'
  | 'idempotencyKey'
  | 'traceContext'
  | 'maxRetries'
> {
  /**
   * `fingerprintOf(name, payload)`, to tell a replay from a conflict; '' for a submission that cannot
   * be replayed (no idempotency key, an id the service made up), which spares the hash.
   */
  fingerprint: string;
  /**
   * True when the id was generated (no `X-Async-Request-Id`): a store may draw another one, and the
   * caller must go on with the stored job's id (the partitioned Redis store puts a job with an
   * idempotency key in its key's partition, and the other jobs of one moment in one partition).
   */
  idGenerated?: boolean;
}

// Both functions spell out every field in one order rather than spreading and adding fields: that
// built dictionary-mode objects, slow to create, read and collect (a fifth of the submit path's CPU).

/** A new Queued job from the producer's input; the input's JSON values are copied, not shared. */
export function newQueuedJob(input: NewJob, now: number): Job {
  return {
    id: input.id,
    name: input.name,
    status: JobStatus.Queued,
    payload: cloneJson(input.payload),
    headers: { ...input.headers },
    routeParams: { ...input.routeParams },
    queryParams: cloneJson(input.queryParams) as Job['queryParams'],
    owner: input.owner,
    idempotencyKey: input.idempotencyKey,
    fingerprint: input.fingerprint,
    traceContext: input.traceContext && { ...input.traceContext },
    retryCount: 0,
    maxRetries: input.maxRetries,
    recoveryCount: 0,
    progress: null,
    result: null,
    error: null,
    createdAt: now,
    startedAt: null,
    completedAt: null,
    lastUpdatedAt: now,
    retryDelayUntil: null,
    cancelRequested: false,
    workerId: null,
    leaseExpiresAt: null,
  };
}

/** A deep copy of the job's public fields (a store's internal fields stay behind). */
export function copyJob(job: Job): Job {
  return {
    id: job.id,
    name: job.name,
    status: job.status,
    payload: cloneJson(job.payload),
    headers: { ...job.headers },
    routeParams: { ...job.routeParams },
    queryParams: cloneJson(job.queryParams) as Job['queryParams'],
    owner: job.owner,
    idempotencyKey: job.idempotencyKey,
    fingerprint: job.fingerprint,
    traceContext: job.traceContext && { ...job.traceContext },
    retryCount: job.retryCount,
    maxRetries: job.maxRetries,
    recoveryCount: job.recoveryCount,
    progress: cloneJson(job.progress),
    result: cloneJson(job.result),
    error: job.error && { ...job.error },
    createdAt: job.createdAt,
    startedAt: job.startedAt,
    completedAt: job.completedAt,
    lastUpdatedAt: job.lastUpdatedAt,
    retryDelayUntil: job.retryDelayUntil,
    cancelRequested: job.cancelRequested,
    workerId: job.workerId,
    leaseExpiresAt: job.leaseExpiresAt,
  };
}

/** Recursion this deep is safe on any stack; deeper parts are copied without it. */
const MAX_RECURSIVE_CLONE_DEPTH = 64;

/**
 * A deep copy of a JSON value; much cheaper than structuredClone for the small values jobs carry.
 * Anything but plain objects and arrays (a Date a producer passed in) goes to structuredClone. A
 * `__proto__` key is copied as an own property: the copy never takes a prototype from the value.
 */
export function cloneJson<T extends JsonValue | null>(value: T, depth = 0): T {
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_RECURSIVE_CLONE_DEPTH) return cloneDeepJson(value);
  if (Array.isArray(value)) return value.map((item) => cloneJson(item, depth + 1)) as T;
  const prototype = Object.getPrototypeOf(value) as unknown;
  if (prototype !== Object.prototype && prototype !== null) return structuredClone(value);
  const copy: Record<string, JsonValue> = {};
  for (const key of Object.keys(value))
    setKey(copy, key, cloneJson((value as Record<string, JsonValue>)[key]!, depth + 1));
  return copy as T;
}

/** cloneJson without recursion, from a stack of its own, for the parts of a value nested deep. */
function cloneDeepJson<T extends JsonValue>(value: T): T {
  const pending: [source: object, target: Record<string, JsonValue> | JsonValue[]][] = [];
  const copyOf = (item: JsonValue): JsonValue => {
    if (item === null || typeof item !== 'object') return item;
    if (Array.isArray(item)) {
      const target = new Array<JsonValue>(item.length);
      pending.push([item, target]);
      return target;
    }
    const prototype = Object.getPrototypeOf(item) as unknown;
    if (prototype !== Object.prototype && prototype !== null) return structuredClone(item);
    const target: Record<string, JsonValue> = {};
    pending.push([item, target]);
    return target;
  };
  const root = copyOf(value);
  while (pending.length > 0) {
    const [source, target] = pending.pop()!;
    if (Array.isArray(target)) {
      const items = source as JsonValue[];
      for (let i = 0; i < items.length; i++) target[i] = copyOf(items[i]!);
    } else {
      for (const key of Object.keys(source)) setKey(target, key, copyOf((source as Record<string, JsonValue>)[key]!));
    }
  }
  return root as T;
}

function setKey(target: Record<string, JsonValue>, key: string, value: JsonValue): void {
  // Assigned, `__proto__` would set the prototype instead of a property.
  if (key === '__proto__')
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}
