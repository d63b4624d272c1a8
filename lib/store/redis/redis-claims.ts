import { randomInt, randomUUID } from 'node:crypto';
import { JobErrorCode, type Job, type JobError } from '../../job/index.js';
import type { ClaimedJob, ClaimOptions, FailOptions, FailOutcome, Lease, Retention } from '../job-store.js';
import { ttlArg, type RedisCalls } from './redis-calls.js';
import { decodeClaimedJob, UnreadableJobError } from './redis-job-codec.js';
import type { StoreKeys } from './redis-keys.js';
import type { PartitionCounts } from './redis-partition-counts.js';

/** For a claim told no retention: the defaults of `retention.*`. */
const DEFAULT_RETENTION: Retention = { completedTtlMs: 86_400_000, failedTtlMs: 604_800_000 };

type FailJob = (lease: Lease, error: JobError, options: FailOptions) => Promise<FailOutcome>;

/** Every partition is claimed from at least this often, so that a lost wake-up costs latency, never a job. */
const VISIT_ALL_EVERY_MS = 1000;
/** Partitions a claim visits at once after the first one left part of its limit unfilled. */
const WAVE = 4;
/**
 * Claims in a row that start at the same partition while it fills them. Under a backlog a worker's next
 * claim then goes where its completions wait for their batch, and rides on them (RedisCalls.claim): one
 * round trip for both, and the partitions' masters are not all woken for every batch. Partitions still
 * take turns, every STICKY_CLAIMS claims at most.
 */
export const STICKY_CLAIMS = 8;

/**
 * The Redis store's claim: leases due jobs partition by partition (claim-due.lua, run alone by
 * claimJobs.lua or riding on the partition's waiting completions: RedisCalls.claim), and decodes them
 * on the way to their handlers; a job that does not decode is failed under its lease (with `failJob`)
 * instead of run. With several partitions, a claim visits only those marked as maybe holding due work
 * (a job-available event for them, a retry's due time passed, or a second passed since all were
 * visited): the first from its start (which stays while it fills claims, see STICKY_CLAIMS) with the
 * whole limit, then, while the limit is not filled, the next ones a few at once. Order holds within a partition (due time, then submission); partitions
 * take turns.
 */
export class RedisClaims {
  /**
   * Per set of names claimed (a worker claims with one), the partitions that may hold due work for
   * them (a claim whose script says nothing of its names is due there any more unmarks it for those
   * names only), and where its claims start.
   */
  private readonly marks = new Map<string, ClaimMarks>();
  /**
   * Per partition, how often it was marked: a claim unmarks a partition only when no mark came while
   * its script was on its way (a job stored meanwhile must not lose its wake-up).
   */
  private readonly markCount: number[];
  /** Per partition, the earliest due time of a retry announced there (Infinity when none). */
  private readonly dueAt: number[];

  constructor(
    private readonly calls: RedisCalls,
    private readonly keys: StoreKeys,
    private readonly counts: PartitionCounts,
    private readonly failJob: FailJob,
  ) {
    this.dueAt = keys.partitions.map(() => Infinity);
    this.markCount = keys.partitions.map(() => 0);
  }

  /** A job-available event for `partition` (with `dueAt` for a retry not due yet). */
  mark(partition: number, dueAt: number | undefined): void {
    if (partition < 0 || partition >= this.dueAt.length) return;
    if (dueAt !== undefined) {
      this.dueAt[partition] = Math.min(this.dueAt[partition]!, dueAt);
      return;
    }
    this.markCount[partition]!++;
    for (const { marked } of this.marks.values()) marked[partition] = true;
  }

  async claimDueJobs(options: ClaimOptions): Promise<ClaimedJob[]> {
    const claimed: ClaimedJob[] = [];
    const count = this.keys.partitions.length;
    if (count === 1) {
      await this.claimPartition(0, options, options.limit, claimed);
      return claimed;
    }
    const marks = this.marksOf(options.names);
    if (options.now - marks.visitedAt >= VISIT_ALL_EVERY_MS) {
      marks.marked.fill(true);
      marks.visitedAt = options.now;
      // A claim on its way must not undo this visit's marks.
      for (let index = 0; index < count; index++) this.markCount[index]!++;
    }
    for (let index = 0; index < count; index++) {
      if (this.dueAt[index]! <= options.now) {
        this.dueAt[index] = Infinity;
        this.mark(index, undefined);
      }
    }
    let limit = options.limit;
    if (options.maxConcurrentJobs != null) {
      await this.counts.refresh(options.now);
      limit = Math.min(limit, options.maxConcurrentJobs - this.counts.inProgressTotal());
    }
    let candidates: number[] = [];
    for (let i = 0; i < count; i++) {
      const index = (marks.start + i) % count;
      if (marks.marked[index]) candidates.push(index);
    }
    // The first marked partition from the start gets the whole limit: under load it fills it in one
    // script call, and stays the start while it does (STICKY_CLAIMS). When it does not, the start moves
    // on, and the next ones go a few at once, sharing what is left; those with due jobs left stay
    // candidates for the next wave.
    const first = candidates[0];
    if (first !== undefined) startAt(marks, first);
    let wave = 1;
    while (claimed.length < limit && candidates.length > 0) {
      const want = limit - claimed.length;
      const visiting = candidates.slice(0, Math.min(wave, want));
      const results = await Promise.all(
        visiting.map((index, i) => {
          const share = Math.floor(want / visiting.length) + (i < want % visiting.length ? 1 : 0);
          return this.visit(index, options, share, claimed, marks.marked);
        }),
      );
      if (wave === 1 && results[0]!.leased < want) moveStart(marks, first!, count);
      // Nothing leased and every one still holding due jobs: the concurrency cap holds them back.
      if (results.every((result) => result.leased === 0 && result.left)) break;
      candidates = [...visiting.filter((_, i) => results[i]!.left), ...candidates.slice(visiting.length)];
      wave = WAVE;
    }
    return claimed;
  }

  /** One partition's claim; unmarks it when nothing of these names is due there any more. */
  private async visit(index: number, options: ClaimOptions, want: number, claimed: ClaimedJob[], marked: boolean[]) {
    const marksBefore = this.markCount[index];
    const cap = options.maxConcurrentJobs == null ? '' : String(this.counts.inProgressOf(index) + want);
    const result = await this.claimPartition(index, options, want, claimed, cap);
    this.counts.noteClaimed(index, result.leased);
    if (!result.left && this.markCount[index] === marksBefore) marked[index] = false;
    return result;
  }

  private marksOf(names: readonly string[]) {
    const key = names.join('\n');
    let marks = this.marks.get(key);
    if (!marks) {
      // A few sets at most in a process; a caller that varies them (tests, tools) starts afresh.
      if (this.marks.size >= 16) this.marks.clear();
      marks = {
        marked: this.keys.partitions.map(() => true),
        visitedAt: -Infinity,
        // A random start, so that a deployment's workers do not all start on one partition.
        start: randomInt(this.keys.partitions.length),
        claimsFromStart: 0,
      };
      this.marks.set(key, marks);
    }
    return marks;
  }

  /**
   * Claims up to `limit` from one partition: how many were leased, and (with several partitions)
   * whether a job of these names is still due there.
   */
  private async claimPartition(
    index: number,
    options: ClaimOptions,
    limit: number,
    claimed: ClaimedJob[],
    cap = options.maxConcurrentJobs == null ? '' : String(options.maxConcurrentJobs),
  ): Promise<{ leased: number; left: boolean }> {
    let leased = 0;
    let left = false;
    // A leased job whose fields do not decode is failed, not handed out: its slot is claimed again, as
    // long as the queue had enough for a full batch.
    while (limit > 0) {
      const batch = await this.claimBatch(index, options, limit, claimed, cap);
      leased += batch.leased;
      left = batch.left;
      if (batch.undecodable === 0 || batch.leased < limit) break;
      limit = batch.undecodable;
    }
    return { leased, left };
  }

  /** One claim script call; pushes the jobs that decode onto `claimed`. */
  private async claimBatch(
    index: number,
    options: ClaimOptions,
    limit: number,
    claimed: ClaimedJob[],
    cap: string,
  ): Promise<{ leased: number; undecodable: number; left: boolean }> {
    const names = options.names;
    if (names.length === 0) return { leased: 0, undecodable: 0, left: false };
    const retention = options.retention ?? DEFAULT_RETENTION;
    const args = [
      String(options.now),
      String(options.leaseMs),
      options.workerId,
      cap,
      String(ttlArg(retention.failedTtlMs)),
      JobErrorCode.Unreadable,
      String(names.length),
      // Whether due jobs are left matters only to a store with partitions to choose from.
      this.keys.partitions.length > 1 ? '1' : '',
      String(limit),
    ];
    const tokensFrom = args.length;
    for (let i = 0; i < limit; i++) args.push(randomUUID());
    const [reply, unreadable, left] = (await this.calls.claim(index, { names, args })) as [
      (string | null)[][],
      string[],
      number | undefined,
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
    return { leased: reply.length, undecodable, left: left === 1 };
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

/**
 * Per set of names claimed: the partitions that may hold due work for them, when all were last visited,
 * and where the next claim starts (how many claims in a row have started there). Kept per set of names,
 * so that claims of other names (another worker of the process, a tool) do not move this start.
 */
interface ClaimMarks {
  marked: boolean[];
  visitedAt: number;
  start: number;
  claimsFromStart: number;
}

/** A claim starts at partition `index`: the next ones do too, until STICKY_CLAIMS have. */
function startAt(marks: ClaimMarks, index: number): void {
  if (marks.start !== index) {
    marks.start = index;
    marks.claimsFromStart = 0;
  }
  if (++marks.claimsFromStart >= STICKY_CLAIMS) moveStart(marks, index, marks.marked.length);
}

/** The next claim starts at the partition after `from`, unless another claim moved the start already. */
function moveStart(marks: ClaimMarks, from: number, count: number): void {
  if (marks.start !== from) return;
  marks.start = (from + 1) % count;
  marks.claimsFromStart = 0;
}
