import { randomUUID } from 'node:crypto';
import { JobErrorCode, type Job, type JobError } from '../../job/index.js';
import type { ClaimedJob, ClaimOptions, FailOptions, FailOutcome, Lease, Retention } from '../job-store.js';
import { ttlArg, type RedisCalls } from './redis-calls.js';
import { decodeClaimedJob, UnreadableJobError } from './redis-job-codec.js';
import type { RedisKeys } from './redis-keys.js';

/** For a claim told no retention: the defaults of `retention.*`. */
const DEFAULT_RETENTION: Retention = { completedTtlMs: 86_400_000, failedTtlMs: 604_800_000 };

type FailJob = (lease: Lease, error: JobError, options: FailOptions) => Promise<FailOutcome>;

/**
 * The Redis store's claim: leases due jobs with claim-due-jobs.lua and decodes them on the way to their
 * handlers; a job that does not decode is failed under its lease (with `failJob`) instead of run.
 */
export class RedisClaims {
  constructor(
    private readonly calls: RedisCalls,
    private readonly keys: RedisKeys,
    private readonly failJob: FailJob,
  ) {}

  async claimDueJobs(options: ClaimOptions): Promise<ClaimedJob[]> {
    const claimed: ClaimedJob[] = [];
    // A leased job whose fields do not decode is failed, not handed out: its slot is claimed again, as
    // long as the queue had enough for a full batch.
    for (let limit = options.limit; limit > 0;) {
      const { leased, undecodable } = await this.claimBatch(options, limit, claimed);
      if (undecodable === 0 || leased < limit) break;
      limit = undecodable;
    }
    return claimed;
  }

  /** One claim script call; pushes the jobs that decode onto `claimed`. */
  private async claimBatch(
    options: ClaimOptions,
    limit: number,
    claimed: ClaimedJob[],
  ): Promise<{ leased: number; undecodable: number }> {
    const retention = options.retention ?? DEFAULT_RETENTION;
    const args = [
      String(options.now),
      String(options.leaseMs),
      options.workerId,
      String(options.maxConcurrentJobs ?? ''),
      String(ttlArg(retention.failedTtlMs)),
      JobErrorCode.Unreadable,
    ];
    const tokensFrom = args.length;
    for (let i = 0; i < limit; i++) args.push(randomUUID());
    const [reply, unreadable] = (await this.calls.run('claimDueJobs', this.keys.store, args)) as [
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
