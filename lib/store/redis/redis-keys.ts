import { createHash } from 'node:crypto';
import { JOB_STATUSES, type Job, type JobStatus } from '../../job/index.js';
import { idempotencyScopeKey } from '../idempotency-scope.js';

export const DEFAULT_KEY_PREFIX = '{async-endpoints}';

/**
 * The Redis key layout of one store. Every key starts with the prefix, whose `{hash tag}` puts all of
 * them in one Cluster slot, so every script may touch any of them.
 */
export class RedisKeys {
  /** Waiting jobs (Queued and Scheduled): zset of `<seq>:<id>` scored by due time. */
  readonly waiting: string;
  /** InProgress jobs: zset of ids scored by lease expiry. */
  readonly leases: string;
  /** InProgress jobs: zset of ids scored by start time, for recovery's hard cap. */
  readonly started: string;
  /** Hash of idempotency digest -> job id. */
  readonly idempotency: string;
  /** Zset of idempotency digests scored by the end of their job's retention. */
  readonly idempotencyExpiries: string;
  /** Submission counter: the tie-breaker among jobs due at the same time. */
  readonly sequence: string;
  /** `<token> <held until>` of the process whose recovery sweep runs. */
  readonly recoveryLock: string;
  /**
   * Per status, a zset of job ids: live ones scored by submission order, terminal ones by the end of
   * their retention (so the same index serves listing, counting and pruning).
   */
  readonly statusIndex: Readonly<Record<JobStatus, string>>;
  /**
   * Pub/sub channel of the events workers need: job-available, cancel-requested (a channel, not a key:
   * it has no slot).
   */
  readonly events: string;
  /** Pub/sub channel of job-finished events, which only waiting readers (long-polls) need. */
  readonly finished: string;
  /** The store-wide keys, in the order every script expects them as KEYS[1..13] (see common.lua). */
  readonly store: readonly string[];

  constructor(readonly prefix: string = DEFAULT_KEY_PREFIX) {
    assertHashTag(prefix);
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
    this.events = `${prefix}:events`;
    this.finished = `${prefix}:finished`;
    this.store = [
      this.waiting,
      this.leases,
      this.started,
      this.idempotency,
      this.idempotencyExpiries,
      this.sequence,
      this.recoveryLock,
      ...JOB_STATUSES.map((status) => this.statusIndex[status]),
    ];
  }

  /** The job's hash. Scripts that find ids in an index build the same name themselves (common.lua). */
  job(id: string): string {
    return `${this.prefix}:job:${id}`;
  }
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
 * store needs that, or its keys would scatter over slots and its scripts fail with CROSSSLOT.
 */
function assertHashTag(prefix: string): void {
  const open = prefix.indexOf('{');
  const close = open === -1 ? -1 : prefix.indexOf('}', open + 1);
  if (close <= open + 1) {
    throw new Error(
      `Redis job store keyPrefix '${prefix}' has no hash tag: it must contain a non-empty {tag}, such as '${DEFAULT_KEY_PREFIX}', so that all keys share one Redis Cluster slot.`,
    );
  }
}
