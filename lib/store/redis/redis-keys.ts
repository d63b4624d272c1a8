import { createHash } from 'node:crypto';
import { JOB_STATUSES, type Job, type JobStatus } from '../../job/index.js';
import { idempotencyScopeKey } from '../idempotency-scope.js';
import { partitionOf, partitionPrefixes } from './redis-partitions.js';

export const DEFAULT_KEY_PREFIX = '{async-endpoints}';

/** The value of `<keyPrefix>:meta`'s `layout` field this store writes and reads. */
export const LAYOUT_VERSION = '2';

/**
 * The keys of one partition of the store (docs/storage.md). Every key starts with the partition's
 * prefix, whose `{hash tag}` puts all of them in one Cluster slot, so a script may touch any of them.
 * Stable names: the migrate command builds them too.
 */
export class RedisKeys {
  /** InProgress jobs: zset of ids scored by start time, for recovery's hard cap. */
  readonly started: string;
  /** Hash of idempotency digest -> job id. */
  readonly idempotency: string;
  /** Zset of idempotency digests scored by the end of their job's retention. */
  readonly idempotencyExpiries: string;
  /** Submission counter: the tie-breaker among jobs due at the same time. */
  readonly sequence: string;
  /** `<token> <held until>` of the process whose recovery sweep runs in this partition. */
  readonly recoveryLock: string;
  /** Set of the names with a stored job in this partition. */
  readonly names: string;
  /**
   * Per status, a zset of job ids: live ones scored by the time (ms) they entered the status, terminal
   * ones by the end of their retention (so the same index serves listing, counting and pruning).
   */
  readonly statusIndex: Readonly<Record<JobStatus, string>>;
  /**
   * Shard channel (SPUBLISH) of the partition's events that workers need: job-available,
   * cancel-requested. A channel is no key, but is hashed like one: this one lies in the partition's
   * slot, so a message stays on the shard that holds the partition.
   */
  readonly events: string;
  /** Shard channel of the partition's job-finished events, which only waiting readers (long-polls) need. */
  readonly finished: string;

  constructor(readonly prefix: string) {
    this.started = `${prefix}:started`;
    this.idempotency = `${prefix}:idempotency`;
    this.idempotencyExpiries = `${prefix}:idempotency-expiries`;
    this.sequence = `${prefix}:sequence`;
    this.recoveryLock = `${prefix}:recovery-lock`;
    this.names = `${prefix}:names`;
    this.events = `${prefix}:events`;
    this.finished = `${prefix}:finished`;
    this.statusIndex = Object.fromEntries(
      JOB_STATUSES.map((status) => [status, `${prefix}:status:${status}`]),
    ) as Record<JobStatus, string>;
  }

  /** The job's hash. The claim script builds the same name itself (its one undeclared key). */
  job(id: string): string {
    return `${this.prefix}:job:${id}`;
  }

  /** Waiting (Queued and Scheduled) jobs of one name: zset of `<seq>:<id>` scored by due time. */
  waiting(name: string): string {
    return `${this.prefix}:waiting:${name}`;
  }

  /** InProgress jobs of one name: zset of ids scored by lease expiry. */
  leases(name: string): string {
    return `${this.prefix}:leases:${name}`;
  }
}

/**
 * The keys of a whole store: its partitions (`partitionPrefixes`) and the store-wide keys, which live
 * under the key prefix itself (one slot; with one partition, that partition's).
 */
export class StoreKeys {
  /** Hash `{layout, partitions}`, written by the first store that starts on an empty prefix. */
  readonly meta: string;
  /** Hash workerId -> `<expiresAt> <names as JSON>` (registerWorker). */
  readonly workers: string;
  /** Partition k's keys at index k. */
  readonly partitions: readonly RedisKeys[];

  constructor(
    readonly prefix: string = DEFAULT_KEY_PREFIX,
    partitionCount = 1,
  ) {
    assertHashTag(prefix);
    if (!Number.isInteger(partitionCount) || partitionCount < 1) {
      throw new Error(`Redis job store partitions = ${partitionCount}: must be a whole number of at least 1.`);
    }
    this.meta = `${prefix}:meta`;
    this.workers = `${prefix}:workers`;
    this.partitions = partitionPrefixes(prefix, partitionCount).map(
      (partitionPrefix) => new RedisKeys(partitionPrefix),
    );
  }

  /** The partition of a job id, or of an idempotency digest: crc32 mod the partition count. */
  partitionIndexOf(text: string): number {
    return partitionOf(text, this.partitions.length);
  }

  /** The keys of the partition a job id (or an idempotency digest) belongs to. */
  partitionOf(text: string): RedisKeys {
    return this.partitions[this.partitionIndexOf(text)]!;
  }

  /** The job's hash, in its partition: reading a job by id is one key read. */
  job(id: string): string {
    return this.partitionOf(id).job(id);
  }
}

/**
 * Holds the partition count of a `migrate` run under way (see migrateLayout): a store does not start
 * while it exists, since jobs may be half moved.
 */
export function migratingKey(prefix: string): string {
  return `${prefix}:migrating`;
}

/**
 * The exact names of 0.1.0's store-wide keys under a key prefix (its job hashes were `<prefix>:job:<id>`).
 * Any of them present while `<prefix>:meta` is not means 0.1.0 data, which `npx nestjs-async-endpoints
 * migrate` must convert first: layout 2 writes its meta before it stores anything.
 */
export function layoutV1Keys(prefix: string): string[] {
  return [
    `${prefix}:waiting`,
    `${prefix}:leases`,
    `${prefix}:started`,
    `${prefix}:sequence`,
    `${prefix}:idempotency`,
    ...JOB_STATUSES.map((status) => `${prefix}:status:${status}`),
  ];
}

/**
 * An idempotency key in its scope (idempotencyScopeKey), hashed, so that any client-chosen key makes a
 * short, safe hash field.
 */
export function idempotencyDigest(job: Pick<Job, 'name' | 'owner' | 'idempotencyKey'>): string {
  return createHash('sha256').update(idempotencyScopeKey(job)).digest('base64url');
}

/**
 * Redis Cluster hashes only the part between the first `{` and the next `}` when it is non-empty; the
 * store needs that, or a partition's keys would scatter over slots and its scripts fail with CROSSSLOT.
 */
function assertHashTag(prefix: string): void {
  const open = prefix.indexOf('{');
  const close = open === -1 ? -1 : prefix.indexOf('}', open + 1);
  if (close <= open + 1) {
    throw new Error(
      `Redis job store keyPrefix '${prefix}' has no hash tag: it must contain a non-empty {tag}, such as '${DEFAULT_KEY_PREFIX}', so that all keys of a partition share one Redis Cluster slot.`,
    );
  }
}
