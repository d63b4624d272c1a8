import type { Redis } from 'ioredis';
import { JOB_STATUSES, type JobStatus } from '../../../job/index.js';
import type { RedisKeys } from '../redis-keys.js';

/** Where a migration reads jobs: 0.1.0's keys, or one partition of a layout-2 store. */
export interface SourceKeys {
  readonly prefix: string;
  readonly statusIndex: Readonly<Record<JobStatus, string>>;
  readonly started: string;
  readonly idempotency: string;
  readonly idempotencyExpiries: string;
  readonly sequence: string;
  job(id: string): string;
  /** The zset holding a waiting job's entry, or a running job's lease. */
  waitingOf(name: string): string;
  leasesOf(name: string): string;
  /** 0.1.0 scored live jobs' status entries by seq: they get layout 2's score (when they entered it). */
  readonly rescoresLive: boolean;
  /** Its keys that hold no job once every job has left it (an empty zset is gone by itself). */
  readonly leftovers: readonly string[];
  /** A layout-2 partition that is not kept: its names set, whose per-name zsets go at the end too. */
  readonly names?: string;
}

/** 0.1.0's keys under a key prefix: the single waiting and leases zsets, beside keys layout 2 keeps. */
export class V1Keys implements SourceKeys {
  readonly waiting: string;
  readonly leases: string;
  readonly started: string;
  readonly idempotency: string;
  readonly idempotencyExpiries: string;
  readonly sequence: string;
  readonly recoveryLock: string;
  readonly statusIndex: Readonly<Record<JobStatus, string>>;
  readonly rescoresLive = true;
  readonly leftovers: readonly string[];

  constructor(readonly prefix: string) {
    this.waiting = `${prefix}:waiting`;
    this.leases = `${prefix}:leases`;
    this.started = `${prefix}:started`;
    this.idempotency = `${prefix}:idempotency`;
    this.idempotencyExpiries = `${prefix}:idempotency-expiries`;
    this.sequence = `${prefix}:sequence`;
    this.recoveryLock = `${prefix}:recovery-lock`;
    this.statusIndex = Object.fromEntries(
      JOB_STATUSES.map((status) => [status, `${prefix}:status:${status}`]),
    ) as Record<JobStatus, string>;
    // Entries of jobs that no status index named (gone), and 0.1.0's counters and mappings.
    this.leftovers = [
      this.waiting,
      this.leases,
      this.started,
      this.idempotency,
      this.idempotencyExpiries,
      this.sequence,
      this.recoveryLock,
    ];
  }

  job(id: string): string {
    return `${this.prefix}:job:${id}`;
  }

  waitingOf(): string {
    return this.waiting;
  }

  leasesOf(): string {
    return this.leases;
  }
}

/** A partition of a layout-2 store as a source; `kept` when it is a partition of the target too. */
export function layout2Source(keys: RedisKeys, kept: boolean): SourceKeys {
  return {
    prefix: keys.prefix,
    statusIndex: keys.statusIndex,
    started: keys.started,
    idempotency: keys.idempotency,
    idempotencyExpiries: keys.idempotencyExpiries,
    sequence: keys.sequence,
    job: (id) => keys.job(id),
    waitingOf: (name) => keys.waiting(name),
    leasesOf: (name) => keys.leases(name),
    rescoresLive: false,
    ...(kept ? {} : { names: keys.names }),
    leftovers: kept
      ? []
      : [keys.names, keys.started, keys.idempotency, keys.idempotencyExpiries, keys.sequence, keys.recoveryLock],
  };
}

export const LIVE_STATUSES: readonly JobStatus[] = ['Queued', 'Scheduled', 'InProgress'];
export const TERMINAL_STATUSES: readonly JobStatus[] = ['Completed', 'Failed', 'Canceled'];

/** The fields the migration reads; the rest of a hash is copied whole (DUMP and RESTORE) or left in place. */
const FIELDS = [
  'status',
  'name',
  'seq',
  'idempotencyDigest',
  'startedAt',
  'lastUpdatedAt',
  'createdAt',
  'retryDelayUntil',
  'leaseExpiresAt',
] as const;
type Fields = Partial<Record<(typeof FIELDS)[number], string>>;

/** A job hash as its source holds it, with the index scores that say where it stands. */
export interface SourceJob {
  id: string;
  fields: Fields;
  /** The hash's time to live in ms; -1 for none. */
  pttl: number;
  /** The hash as DUMP serializes it, when asked for. */
  dump: Buffer | null;
  status: JobStatus;
  name: string | undefined;
  /** Its entry in the waiting zsets (`<seq>:<id>`), for a waiting job with a seq. */
  waitingEntry: string | null;
  /** Due time (waiting), lease expiry (InProgress): from 0.1.0's zsets, else from the hash. */
  dueAt: number | null;
  leaseExpiresAt: number | null;
  /** Its score in the index of its status, in layout 2 (see enteredStatusAt). */
  statusScore: number;
}

/**
 * What an index entry names: a job, nothing (`missing`: expired or deleted), or a key the migration
 * cannot read (`unreadable`: not a hash, or no job status in it), which it leaves where it is.
 */
export type SourceEntry = SourceJob | 'missing' | 'unreadable';

/**
 * Reads jobs and their index entries from 0.1.0's keys, in two pipelined round trips; with `dump`,
 * each hash serialized too (DUMP), so that a move copies it whole.
 */
export async function readSourceJobs(
  client: Redis,
  keys: SourceKeys,
  ids: readonly string[],
  statusScores: ReadonlyMap<string, number>,
  dump: boolean,
): Promise<SourceEntry[]> {
  const reads = client.pipeline();
  for (const id of ids) {
    reads.hmget(keys.job(id), ...FIELDS).pttl(keys.job(id));
    if (dump) reads.dumpBuffer(keys.job(id));
  }
  const replies = await exec(reads);
  const stride = dump ? 3 : 2;
  const entries = ids.map((id, i): SourceEntry => {
    const [values, pttl, serialized] = replies.slice(stride * i, stride * (i + 1)) as [
      (string | null)[] | Error,
      number,
      Buffer | null | undefined,
    ];
    if (pttl === -2) return 'missing';
    if (values instanceof Error) return 'unreadable';
    const fields: Fields = {};
    FIELDS.forEach((field, j) => {
      if (values[j] !== null) fields[field] = values[j]!;
    });
    if (!fields.status || !(JOB_STATUSES as readonly string[]).includes(fields.status)) return 'unreadable';
    const status = fields.status as JobStatus;
    return {
      id,
      fields,
      pttl,
      dump: serialized ?? null,
      status,
      name: fields.name,
      waitingEntry: isWaiting(status) && fields.seq ? waitingEntry(fields.seq, id) : null,
      dueAt: null,
      leaseExpiresAt: null,
      statusScore:
        keys.rescoresLive && LIVE_STATUSES.includes(status)
          ? enteredStatusAt(fields)
          : (statusScores.get(id) ?? enteredStatusAt(fields)),
    };
  });
  const jobs = entries.map((entry) => (typeof entry === 'string' ? null : entry));
  const scores = await exec(
    jobs.reduce((pipeline, job) => {
      // The source's zset, then the name's under the same prefix: converting 0.1.0 in place, a run
      // cut short may have moved the entry there already (for other sources, the same key again, or none).
      if (job?.waitingEntry) {
        pipeline.zscore(keys.waitingOf(job.name ?? ''), job.waitingEntry);
        pipeline.zscore(`${keys.prefix}:waiting:${job.name}`, job.waitingEntry);
      } else if (job?.status === 'InProgress') {
        pipeline.zscore(keys.leasesOf(job.name ?? ''), job.id);
        pipeline.zscore(`${keys.prefix}:leases:${job.name}`, job.id);
      }
      return pipeline;
    }, client.pipeline()),
  );
  let next = 0;
  for (const job of jobs) {
    if (!job || (!job.waitingEntry && job.status !== 'InProgress')) continue;
    const score = firstNumber(scores[next], scores[next + 1]);
    next += 2;
    if (job.waitingEntry) {
      job.dueAt = score ?? numberField(job.fields.retryDelayUntil) ?? enteredStatusAt(job.fields);
    } else {
      job.leaseExpiresAt = numberField(job.fields.leaseExpiresAt) ?? score ?? 0;
    }
  }
  return entries;
}

/**
 * When a live job entered its status, layout 2's score in the status indexes (0.1.0 scored them by
 * seq): a claim sets startedAt; a submit, a retry, a release or a failed attempt set lastUpdatedAt.
 */
function enteredStatusAt(fields: Fields): number {
  const at = fields.status === 'InProgress' ? fields.startedAt : fields.lastUpdatedAt;
  return numberField(at) ?? numberField(fields.lastUpdatedAt) ?? numberField(fields.createdAt) ?? 0;
}

/** Zset members with equal scores sort by their bytes: the zero-padded seq keeps submission order. */
function waitingEntry(seq: string, id: string): string {
  return `${seq.padStart(16, '0')}:${id}`;
}

function isWaiting(status: JobStatus): boolean {
  return status === 'Queued' || status === 'Scheduled';
}

function numberField(value: string | undefined): number | null {
  const number = Number(value);
  return value === undefined || value === '' || !Number.isFinite(number) ? null : number;
}

function firstNumber(...values: unknown[]): number | null {
  for (const value of values) if (typeof value === 'string') return Number(value);
  return null;
}

/** A pipeline's results; the first failure of a command that is not a wrong type throws. */
async function exec(pipeline: ReturnType<Redis['pipeline']>): Promise<unknown[]> {
  const results = (await pipeline.exec()) ?? [];
  return results.map(([error, value]) => {
    if (error && !error.message.startsWith('WRONGTYPE')) throw error;
    return error ?? value;
  });
}
