import { randomUUID } from 'node:crypto';
import { JobErrorCode, type Job, type JobError } from '../../job/index.js';
import type { ClaimedJob, ClaimOptions, FailOptions, FailOutcome, Lease, Retention } from '../job-store.js';
import { ttlArg, type RedisCalls } from './redis-calls.js';
import { decodeClaimedJob, UnreadableJobError } from './redis-job-codec.js';
import type { RedisKeys, StoreKeys } from './redis-keys.js';
import type { PartitionCounts } from './redis-partition-counts.js';

/** For a claim told no retention: the defaults of `retention.*`. */
const DEFAULT_RETENTION: Retention = { completedTtlMs: 86_400_000, failedTtlMs: 604_800_000 };

type FailJob = (lease: Lease, error: JobError, options: FailOptions) => Promise<FailOutcome>;

/** Every partition is claimed from at least this often, so that a lost wake-up costs latency, never a job. */
const VISIT_ALL_EVERY_MS = 1000;

/**
 * The Redis store's claim: leases due jobs with claimJobs.lua, partition by partition, and decodes them
 * on the way to their handlers; a job that does not decode is failed under its lease (with `failJob`)
 * instead of run. With several partitions, a claim visits only those marked as maybe holding due work
 * (a job-available event for them, a retry's due time passed, the last claim there filled its limit, or
 * a second passed since all were visited), starting at a rotating offset so that none is favoured.
 */
export class RedisClaims {
  private readonly marked: boolean[];
  /** Per partition, the earliest due time of a retry announced there (Infinity when none). */
  private readonly dueAt: number[];
  private allVisitedAt = -Infinity;
  private offset = 0;

  constructor(
    private readonly calls: RedisCalls,
    private readonly keys: StoreKeys,
    private readonly counts: PartitionCounts,
    private readonly failJob: FailJob,
  ) {
    this.marked = keys.partitions.map(() => true);
    this.dueAt = keys.partitions.map(() => Infinity);
  }

  /** A job-available event for `partition` (with `dueAt` for a retry not due yet). */
  mark(partition: number, dueAt: number | undefined): void {
    if (partition < 0 || partition >= this.marked.length) return;
    if (dueAt === undefined) this.marked[partition] = true;
    else this.dueAt[partition] = Math.min(this.dueAt[partition]!, dueAt);
  }

  async claimDueJobs(options: ClaimOptions): Promise<ClaimedJob[]> {
    const claimed: ClaimedJob[] = [];
    // TRANSITIONAL (v2-contract): a caller that names no names (the conformance suite until the
    // routing branch lands) claims every name stored in the partition.
    const count = this.keys.partitions.length;
    if (count === 1) {
      await this.claimPartition(0, options, options.limit, claimed);
      return claimed;
    }
    if (options.now - this.allVisitedAt >= VISIT_ALL_EVERY_MS) {
      this.marked.fill(true);
      this.allVisitedAt = options.now;
    }
    const start = this.offset;
    this.offset = (this.offset + 1) % count;
    for (let i = 0; i < count && claimed.length < options.limit; i++) {
      const index = (start + i) % count;
      if (this.dueAt[index]! <= options.now) {
        this.dueAt[index] = Infinity;
        this.marked[index] = true;
      }
      if (!this.marked[index]) continue;
      this.marked[index] = false;
      const want = options.limit - claimed.length;
      const leased = await this.claimPartition(index, options, want, claimed);
      // A full claim may have left more behind.
      if (leased >= want) this.marked[index] = true;
    }
    return claimed;
  }

  /** Claims up to `limit` from one partition; returns how many were leased. */
  private async claimPartition(index: number, options: ClaimOptions, limit: number, claimed: ClaimedJob[]) {
    let total = 0;
    // A leased job whose fields do not decode is failed, not handed out: its slot is claimed again, as
    // long as the queue had enough for a full batch.
    while (limit > 0) {
      const { leased, undecodable } = await this.claimBatch(index, options, limit, claimed);
      total += leased;
      if (undecodable === 0 || leased < limit) break;
      limit = undecodable;
    }
    return total;
  }

  /** One claim script call; pushes the jobs that decode onto `claimed`. */
  private async claimBatch(
    index: number,
    options: ClaimOptions,
    limit: number,
    claimed: ClaimedJob[],
  ): Promise<{ leased: number; undecodable: number }> {
    const partition = this.keys.partitions[index]!;
    const names = options.names ?? (await this.calls.storedNames(partition));
    if (names.length === 0) return { leased: 0, undecodable: 0 };
    const retention = options.retention ?? DEFAULT_RETENTION;
    const cap =
      options.maxConcurrentJobs == null
        ? ''
        : String(options.maxConcurrentJobs - (await this.counts.othersInProgress(index, options.now)));
    const args = [
      this.keys.prefix,
      String(options.now),
      String(options.leaseMs),
      options.workerId,
      cap,
      String(ttlArg(retention.failedTtlMs)),
      JobErrorCode.Unreadable,
      String(names.length),
    ];
    const tokensFrom = args.length;
    for (let i = 0; i < limit; i++) args.push(randomUUID());
    const [reply, unreadable] = (await this.calls.run('claimJobs', claimKeys(partition, names), args)) as [
      (string | null)[][],
      string[],
    ];
    for (let i = 0; i + 2 < unreadable.length; i += 3) {
      const report = { jobId: unreadable[i]!, message: unreadable[i + 1]!, failed: unreadable[i + 2] === '1' };
      options.onUnreadable?.(report);
    }
    // What the claim set, the script leaves out of its reply (a fifth less for the client to read).
    const leased = {
      startedAt: options.now,
      workerId: options.workerId,
      leaseExpiresAt: options.now + options.leaseMs,
    };
    let undecodable = 0;
    for (let i = 0; i < reply.length; i++) {
      const lease = { jobId: reply[i]![0]!, name: reply[i]![1]!, token: args[tokensFrom + i]! };
      let job: Job;
      try {
        job = decodeClaimedJob(reply[i]!, leased);
      } catch (error) {
        if (!(error instanceof UnreadableJobError)) throw error;
        undecodable++;
        await this.failUndecodable(lease, error, options, retention);
        continue;
      }
      claimed.push({ job, lease });
    }
    return { leased: reply.length, undecodable };
  }

  /** A leased job the codec cannot read: Failed with JOB_UNREADABLE under its lease, and reported. */
  private async failUndecodable(lease: Lease, cause: UnreadableJobError, options: ClaimOptions, retention: Retention) {
    const message =
      `Job ${lease.jobId} cannot be read from Redis (${cause.message}): its hash was changed outside the job store, ` +
      'so it was failed instead of run. Submit it again, under a new idempotency key if it had one.';
    const error: JobError = { code: JobErrorCode.Unreadable, message };
    const outcome = await this.failJob(lease, error, { now: options.now, retryAt: null, retention });
    options.onUnreadable?.({ jobId: lease.jobId, message, failed: outcome === 'failed' });
  }
}

/** claimJobs.lua's keys: the partition's, then each name's queue and leases. */
function claimKeys(partition: RedisKeys, names: readonly string[]): string[] {
  const status = partition.statusIndex;
  const keys = [
    partition.started,
    status.Queued,
    status.Scheduled,
    status.InProgress,
    status.Failed,
    partition.idempotencyExpiries,
  ];
  for (const name of names) keys.push(partition.waiting(name), partition.leases(name));
  return keys;
}
