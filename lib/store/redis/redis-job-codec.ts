import { JOB_STATUSES, type Job, type JobStatus, type JsonValue } from '../../job/index.js';

/**
 * How each Job field sits in the job's Redis hash. Plain text for strings, numbers and the status (so
 * scripts can read and compare them), JSON for structured values; a null is an absent field. The Lua
 * side (common.lua: REQUIRED_FIELDS, JSON_FIELDS) applies the same rules to decide a job is readable.
 */
type FieldKind = 'text' | 'text?' | 'number' | 'number?' | 'json' | 'json?' | 'flag' | 'status';

const FIELDS: Readonly<Record<keyof Job, FieldKind>> = {
  id: 'text',
  name: 'text',
  status: 'status',
  payload: 'json',
  headers: 'json',
  routeParams: 'json',
  queryParams: 'json',
  owner: 'text?',
  idempotencyKey: 'text?',
  fingerprint: 'text',
  traceContext: 'json?',
  retryCount: 'number',
  maxRetries: 'number',
  recoveryCount: 'number',
  progress: 'json?',
  result: 'json?',
  error: 'json?',
  createdAt: 'number',
  startedAt: 'number?',
  completedAt: 'number?',
  lastUpdatedAt: 'number',
  retryDelayUntil: 'number?',
  cancelRequested: 'flag',
  workerId: 'text?',
  leaseExpiresAt: 'number?',
};

const STATUSES: ReadonlySet<string> = new Set(JOB_STATUSES);

/** A job hash the store cannot turn back into a Job (tampered with, or written by something else). */
export class UnreadableJobError extends Error {
  constructor(reason: string) {
    super(`Unreadable job hash: ${reason}`);
    this.name = 'UnreadableJobError';
  }
}

/** The job as HSET arguments: field, value, field, value, ... Null fields are left out. */
export function encodeJob(job: Job): string[] {
  const args: string[] = [];
  for (const [field, kind] of Object.entries(FIELDS) as [keyof Job, FieldKind][]) {
    const value = job[field];
    if (value === null) continue;
    args.push(field, encodeField(kind, value));
  }
  return args;
}

/** A JSON value as a script argument: '' stands for null (no JSON text is empty). */
export function encodeJsonArg(value: JsonValue | null): string {
  return value === null ? '' : JSON.stringify(value);
}

/** A hash as HGETALL inside a script returns it: field, value, field, value, ... */
export function decodeJobReply(flat: readonly string[]): Job {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
  return decodeJob(fields);
}

/** Fields of one job hash back into a Job; internal fields (lease token, seq, digest) stay behind. */
export function decodeJob(fields: Readonly<Record<string, string>>): Job {
  const job: Record<string, unknown> = {};
  for (const [field, kind] of Object.entries(FIELDS)) {
    job[field] = decodeField(field, kind, fields[field]);
  }
  return job as unknown as Job;
}

function encodeField(kind: FieldKind, value: unknown): string {
  switch (kind) {
    case 'json':
    case 'json?':
      return JSON.stringify(value);
    case 'flag':
      return value ? '1' : '0';
    default:
      return String(value);
  }
}

function decodeField(field: string, kind: FieldKind, raw: string | undefined): unknown {
  if (raw === undefined) {
    if (kind.endsWith('?')) return null;
    if (kind === 'flag') return false;
    throw new UnreadableJobError(`field '${field}' is missing`);
  }
  switch (kind) {
    case 'status':
      if (!STATUSES.has(raw)) throw new UnreadableJobError(`status '${raw}' is not a job status`);
      return raw as JobStatus;
    case 'number':
    case 'number?': {
      const value = Number(raw);
      if (raw === '' || !Number.isFinite(value)) throw new UnreadableJobError(`field '${field}' is not a number`);
      return value;
    }
    case 'json':
    case 'json?':
      try {
        return JSON.parse(raw) as JsonValue;
      } catch {
        throw new UnreadableJobError(`field '${field}' is not JSON`);
      }
    case 'flag':
      return raw === '1';
    default:
      return raw;
  }
}
