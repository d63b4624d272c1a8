import { JOB_STATUSES, type Job, type JobStatus, type JsonValue } from '../../job/index.js';

/**
 * How each Job field sits in the job's Redis hash. Plain text for strings, numbers and the status (so
 * scripts can read and compare them), JSON for structured values; a null is an absent field. Fields at
 * their usual value are absent too (a zero `count`, an empty `object`, a false `flag`): every field
 * costs Redis about 60 bytes per job. The Lua side (common.lua: REQUIRED_FIELDS, JSON_FIELDS) applies
 * the same rules to decide a job is readable.
 */
type FieldKind = 'text' | 'text?' | 'number' | 'number?' | 'count' | 'json' | 'json?' | 'object' | 'flag' | 'status';

const FIELDS: Readonly<Record<keyof Job, FieldKind>> = {
  id: 'text',
  name: 'text',
  status: 'status',
  payload: 'json',
  headers: 'object',
  routeParams: 'object',
  queryParams: 'object',
  owner: 'text?',
  idempotencyKey: 'text?',
  fingerprint: 'text',
  traceContext: 'json?',
  retryCount: 'count',
  maxRetries: 'number',
  recoveryCount: 'count',
  progress: 'json?',
  result: 'json?',
  error: 'json?',
  createdAt: 'number',
  startedAt: 'number?',
  completedAt: 'number?',
  // Not stored for terminal jobs: it is their completedAt (decodeJob).
  lastUpdatedAt: 'number?',
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

const FIELD_LIST = Object.entries(FIELDS) as [keyof Job, FieldKind][];

/** The job as HSET arguments: field, value, field, value, ... Null and usual-value fields are left out. */
export function encodeJob(job: Job): string[] {
  const args: string[] = [];
  for (const [field, kind] of FIELD_LIST) {
    const value = job[field];
    if (value === null || isUsualValue(kind, value)) continue;
    args.push(field, encodeField(kind, value));
  }
  return args;
}

function isUsualValue(kind: FieldKind, value: unknown): boolean {
  switch (kind) {
    case 'count':
      return value === 0;
    case 'flag':
      return value === false;
    case 'object':
      return Object.keys(value as object).length === 0;
    default:
      return false;
  }
}

/** A JSON value as a script argument: '' stands for null (no JSON text is empty). */
export function encodeJsonArg(value: JsonValue | null): string {
  return value === null ? '' : JSON.stringify(value);
}

/**
 * A hash as HGETALL inside a script returns it: field, value, field, value, ... `known` holds fields the
 * caller knows already and the script left out (a claim's lease fields).
 */
export function decodeJobReply(flat: readonly string[], known?: Readonly<Record<string, string>>): Job {
  // A Map, not an object: hashes list their fields in varying orders, and an object built key by key
  // in varying orders is a slow dictionary (a claimed job decoded in ~22 µs that way, ~4 µs this way).
  const fields = new Map<string, string>();
  if (known) for (const field in known) fields.set(field, known[field]!);
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i]!, flat[i + 1]!);
  return decodeFields((field) => fields.get(field));
}

/** Fields of one job hash back into a Job; internal fields (lease token, seq, digest) stay behind. */
export function decodeJob(fields: Readonly<Record<string, string>>): Job {
  return decodeFields((field) => fields[field]);
}

type FieldDecoder = (raw: string | undefined) => unknown;

/** One decoder per field, in FIELDS order, so that every decoded Job has the same shape. */
const DECODERS: readonly (readonly [keyof Job, FieldDecoder])[] = FIELD_LIST.map(([field, kind]) => [
  field,
  fieldDecoder(field, kind),
]);

function decodeFields(fieldOf: (field: string) => string | undefined): Job {
  const job: Record<string, unknown> = {};
  for (const [field, decode] of DECODERS) job[field] = decode(fieldOf(field));
  job.lastUpdatedAt ??= job.completedAt;
  if (job.lastUpdatedAt === null) throw new UnreadableJobError("field 'lastUpdatedAt' is missing");
  return job as unknown as Job;
}

function encodeField(kind: FieldKind, value: unknown): string {
  switch (kind) {
    case 'json':
    case 'json?':
    case 'object':
      return JSON.stringify(value);
    case 'flag':
      return value ? '1' : '0';
    default:
      return String(value);
  }
}

function fieldDecoder(field: string, kind: FieldKind): FieldDecoder {
  const whenAbsent = absentValue(field, kind);
  const decodePresent = presentDecoder(field, kind);
  return (raw) => (raw === undefined ? whenAbsent() : decodePresent(raw));
}

/** What an absent field stands for (see FieldKind), or the error when it may not be absent. */
function absentValue(field: string, kind: FieldKind): () => unknown {
  if (kind.endsWith('?')) return () => null;
  switch (kind) {
    case 'flag':
      return () => false;
    case 'count':
      return () => 0;
    case 'object':
      return () => ({});
    default:
      return () => {
        throw new UnreadableJobError(`field '${field}' is missing`);
      };
  }
}

function presentDecoder(field: string, kind: FieldKind): (raw: string) => unknown {
  switch (kind) {
    case 'status':
      return (raw) => {
        if (!STATUSES.has(raw)) throw new UnreadableJobError(`status '${raw}' is not a job status`);
        return raw as JobStatus;
      };
    case 'number':
    case 'number?':
    case 'count':
      return (raw) => {
        const value = Number(raw);
        if (raw === '' || !Number.isFinite(value)) throw new UnreadableJobError(`field '${field}' is not a number`);
        return value;
      };
    case 'json':
    case 'json?':
    case 'object':
      return (raw) => {
        try {
          return JSON.parse(raw) as JsonValue;
        } catch {
          throw new UnreadableJobError(`field '${field}' is not JSON`);
        }
      };
    case 'flag':
      return (raw) => raw === '1';
    default:
      return (raw) => raw;
  }
}
