import { randomUUID } from 'node:crypto';
import { Logger } from '@nestjs/common';
import type { Redis, RedisOptions } from 'ioredis';
import { JOB_STATUSES, JobErrorCode, JobStatus, type Job, type JobError, type JsonValue } from '../../job/index.js';
import {
  assertPurgeableStatus,
  isReplayOf,
  JobStore,
  type CancelResult,
  type ClaimedJob,
  type ClaimOptions,
  type CompleteOutcome,
  type CreateJobOptions,
  type CreateJobResult,
  type FailOptions,
  type FailOutcome,
  type JobStats,
  type Lease,
  type ListJobsOptions,
  type NewJob,
  type PurgeJobsOptions,
  type RecoverJobsOptions,
  type RecoveryReport,
  type ReleaseOutcome,
  type RenewResult,
  type Retention,
  type RetryJobResult,
  type StoreEventListener,
  type StoreEventType,
} from '../job-store.js';
import { StoreUnavailableError } from '../store-errors.js';
import { storeClosedError } from '../store-closed.js';
import { CallBatcher, type BatchOutcome } from './call-batcher.js';
import {
  closeConnection,
  connect,
  CONNECT_TIMEOUT_MS,
  createCommandConnection,
  createSubscriberConnection,
  isUnavailableError,
  neverRan,
  watchConnection,
  type StoreLogger,
} from './redis-connections.js';
import { JOB_AVAILABLE_MESSAGE, RedisEventRelay } from './redis-event-relay.js';
import { newQueuedJob } from '../../job/job-records.js';
import { decodeClaimedJob, decodeJob, decodeJobReply, decodeJobReplyLeniently, encodeQueuedJob, encodeJsonArg, UnreadableJobError } from './redis-job-codec.js';
import { idempotencyDigest, RedisKeys } from './redis-keys.js';
import { RedisScripts, type ScriptArg, type ScriptName } from './redis-scripts.js';

export type { StoreLogger } from './redis-connections.js';

export interface RedisStoreOptions {
  /** `redis://` or `rediss://` URL; without it, ioredis' defaults (localhost:6379). */
  url?: string;
  /** ioredis options, merged over the URL's. The fail-fast settings are the store's (redis-connections.ts). */
  options?: RedisOptions;
  /** An existing connection for commands; the store never closes it. Takes precedence over url and options. */
  client?: Redis;
  /** Starts every key; must hold a `{hash tag}`. Default `{async-endpoints}`. */
  keyPrefix?: string;
  logger?: StoreLogger;
}

/** For a claim told no retention: the defaults of `retention.*`. */
const DEFAULT_RETENTION: Retention = { completedTtlMs: 86_400_000, failedTtlMs: 604_800_000 };
/** Scripts of the recovery sweep handle this many jobs each, so that none blocks Redis for long. */
const RECOVERY_BATCH = 500;
/** Index entries one purge script looks at. */
const PURGE_BATCH = 1000;
/** Submissions or completions one script call carries at most (each is a few Redis commands). */
const MAX_BATCH = 64;
const MIN_REDIS_MAJOR = 7;

type CreateReply = ['created'] | ['queue-full', number] | ['existing', string[]];
type CancelReply = ['not-found'] | ['canceled' | 'cancel-requested' | 'already-terminal', string[]];
type RetryReply = ['not-found'] | ['requeued' | 'not-retryable', string[]];
type PurgeReply = [string[], number, 0 | 1];
type RecoveryReply = [string[], string[], string[], number, 0 | 1] | null;
type StatsReply = [(string | number)[], number | null];

/**
 * The production store: jobs in Redis, shared by every process. Each state change is one Lua script
 * (one round trip), fenced by the lease token where a worker makes it; see common.lua for the layout.
 * A command connection that fails fast, and a pub/sub connection that waits and reconnects, for events.
 */
export class RedisJobStore extends JobStore {
  readonly type = 'redis';

  private readonly logger: StoreLogger;
  private readonly keys: RedisKeys;
  private readonly client: Redis;
  private readonly ownsClient: boolean;
  private readonly subscriber: Redis;
  private readonly scripts: RedisScripts;
  private readonly events: RedisEventRelay;
  private readonly stopWatching: (() => void)[];
  private redisVersion: string | null = null;
  private evictionPolicy: string | null = null;
  private closing: Promise<void> | null = null;
  /** The command connection's last error while it is down, to say why a call could not be sent. */
  private lastConnectionError: string | null = null;
  /** Whether a write was refused for lack of memory since the last submit that went through. */
  private outOfMemory = false;
  /** Set once the batches still waiting at close() were sent: calls fail from then on. */
  private closed = false;
  /** Submissions of one moment go to Redis in one script call (see CallBatcher); completions too. */
  private readonly creations = new CallBatcher<BatchItem, CreateReply>((batch) => this.runBatch('createJob', batch), MAX_BATCH);
  private readonly completions = new CallBatcher<BatchItem, CompleteOutcome>(
    (batch) => this.runBatch('completeJob', batch),
    MAX_BATCH,
  );

  constructor(options: RedisStoreOptions = {}) {
    super();
    this.logger = options.logger ?? new Logger(RedisJobStore.name);
    this.keys = new RedisKeys(options.keyPrefix);
    this.client = options.client ?? createCommandConnection(options.url, options.options);
    this.ownsClient = options.client === undefined;
    assertNoClientKeyPrefix(this.client);
    this.subscriber = createSubscriberConnection(this.client);
    const rememberError = (error: Error) => {
      this.lastConnectionError = error.message;
    };
    const forgetError = () => {
      this.lastConnectionError = null;
    };
    this.client.on('error', rememberError).on('ready', forgetError);
    this.stopWatching = [
      watchConnection(this.client, 'command', this.logger),
      watchConnection(this.subscriber, 'subscriber', this.logger),
      () => this.client.off('error', rememberError).off('ready', forgetError),
    ];
    this.scripts = new RedisScripts(this.client);
    this.events = new RedisEventRelay(
      this.subscriber,
      { 'job-available': this.keys.events, 'cancel-requested': this.keys.events, 'job-finished': this.keys.finished },
      this.logger,
    );
  }

  /**
   * Connects and checks the server. Never fails for an unreachable Redis: it logs, keeps reconnecting,
   * and checks the server once it is there; whether to stop the boot is the caller's call (ping()).
   * Fails for a Redis too old for the scripts.
   */
  async init(): Promise<void> {
    try {
      await connect(this.client, CONNECT_TIMEOUT_MS);
    } catch (error) {
      this.logger.warn(
        `Redis is unreachable at startup (${(error as Error).message}); the store keeps reconnecting, and its calls fail with StoreUnavailableError meanwhile.`,
      );
      this.client.once('ready', () => {
        this.inspectServer().catch((failure: Error) => this.logger.error(failure.message));
      });
      return;
    }
    await this.inspectServer();
  }

  async createJob(input: NewJob, options: CreateJobOptions): Promise<CreateJobResult> {
    const job = newQueuedJob(input, options.now);
    const digest = input.idempotencyKey === null ? '' : idempotencyDigest(input);
    const reply = await this.creations.push(
      batchItem(this.keys.job(input.id), [
        input.id,
        String(options.now),
        String(options.maximumQueueSize),
        digest,
        ...encodeQueuedJob(job),
      ]),
    );
    if (this.outOfMemory) {
      this.outOfMemory = false;
      this.logger.log('Redis accepts submissions again: it has memory to spare below maxmemory.');
    }
    switch (reply[0]) {
      case 'created':
        return { outcome: 'created', job };
      case 'queue-full':
        return { outcome: 'queue-full', waiting: reply[1] };
      case 'existing': {
        let existing: Job;
        try {
          existing = decodeJobReply(reply[1]);
        } catch (error) {
          if (!(error instanceof UnreadableJobError)) throw error;
          // No replay of a job that cannot be read, and no new job over it: it stays for inspection.
          const unreadable = decodeJobReplyLeniently(reply[1]);
          this.logger.warn(`Job ${unreadable.id} cannot be read from Redis; a submission naming it was refused as a conflict: ${error.message}`);
          return { outcome: 'conflict', job: unreadable };
        }
        return { outcome: isReplayOf(existing, input) ? 'replayed' : 'conflict', job: existing };
      }
    }
  }

  async getJob(id: string): Promise<Job | null> {
    // A listener added before this read hears every event after it (a long-poll's wake-up).
    await this.events.settled();
    let fields: Record<string, string>;
    try {
      fields = await this.call(() => this.client.hgetall(this.keys.job(id)), { readOnly: true });
    } catch (error) {
      if (!isWrongType(error)) throw error;
      return this.unreadable(id, error as Error);
    }
    if (Object.keys(fields).length === 0) return null;
    try {
      return decodeJob(fields);
    } catch (error) {
      if (!(error instanceof UnreadableJobError)) throw error;
      return this.unreadable(id, error);
    }
  }

  async claimDueJobs(options: ClaimOptions): Promise<ClaimedJob[]> {
    const claimed: ClaimedJob[] = [];
    // A leased job whose fields do not decode is failed, not handed out: its slot is claimed again, as
    // long as the queue had enough for a full batch.
    for (let limit = options.limit; limit > 0; ) {
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
    const [reply, unreadable] = (await this.run('claimDueJobs', this.keys.store, args)) as [(string | null)[][], string[]];
    for (let i = 0; i + 2 < unreadable.length; i += 3) {
      const report = { jobId: unreadable[i]!, message: unreadable[i + 1]!, failed: unreadable[i + 2] === '1' };
      options.onUnreadable?.(report);
    }
    // What the claim set, the script leaves out of its reply (a fifth less for the client to read).
    const leased = { startedAt: options.now, workerId: options.workerId, leaseExpiresAt: options.now + options.leaseMs };
    let undecodable = 0;
    for (let i = 0; i < reply.length; i++) {
      const lease = { jobId: reply[i]![0]!, token: args[tokensFrom + i]! };
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

  async renewLeases(leases: Lease[], options: { now: number; leaseMs: number }): Promise<RenewResult> {
    if (leases.length === 0) return { lost: [], cancelRequested: [] };
    const [lost, cancelRequested] = (await this.run(
      'renewLeases',
      [...this.keys.store, ...leases.map((lease) => this.keys.job(lease.jobId))],
      [options.now, options.leaseMs, ...leases.flatMap((lease) => [lease.jobId, lease.token])],
    )) as [string[], string[]];
    return { lost, cancelRequested };
  }

  async reportProgress(lease: Lease, progress: JsonValue, now: number): Promise<boolean> {
    const recorded = await this.run('reportProgress', this.jobKeys(lease.jobId), [
      now,
      lease.token,
      encodeJsonArg(progress),
    ]);
    return recorded === 1;
  }

  completeJob(lease: Lease, result: JsonValue | null, options: { now: number; retention: Retention }): Promise<CompleteOutcome> {
    return this.completions.push(
      batchItem(this.keys.job(lease.jobId), [
        String(options.now),
        lease.token,
        encodeJsonArg(result),
        String(ttlArg(options.retention.completedTtlMs)),
        options.retention.dropPayloadOnFinish ? '1' : '',
      ]),
    );
  }

  /** One script call for a batch: each item's job hash as a key, its arguments after their count. */
  private async runBatch<R>(name: 'createJob' | 'completeJob', batch: BatchItem[]): Promise<BatchOutcome<R>[]> {
    const keys = [...this.keys.store];
    const args: string[] = [];
    for (const item of batch) {
      keys.push(item.key);
      args.push(...item.args);
    }
    // A batch of submissions wakes the workers once, right after its script.
    const then = name === 'createJob' ? { publish: this.keys.events, message: JOB_AVAILABLE_MESSAGE } : undefined;
    const replies = (await this.run(name, keys, args, then)) as unknown[];
    return replies.map(batchOutcome<R>);
  }

  async failJob(lease: Lease, error: JobError, options: FailOptions): Promise<FailOutcome> {
    return (await this.run('failJob', this.jobKeys(lease.jobId), [
      options.now,
      lease.token,
      JSON.stringify(error),
      options.retryAt ?? '',
      ttlArg(options.retention.completedTtlMs),
      ttlArg(options.retention.failedTtlMs),
    ])) as FailOutcome;
  }

  async releaseJob(lease: Lease, options: { now: number; retention: Retention }): Promise<ReleaseOutcome> {
    return (await this.run('releaseJob', this.jobKeys(lease.jobId), [
      options.now,
      lease.token,
      ttlArg(options.retention.completedTtlMs),
    ])) as ReleaseOutcome;
  }

  async cancelJob(id: string, options: { now: number; retention: Retention }): Promise<CancelResult> {
    const reply = (await this.run('cancelJob', this.jobKeys(id), [
      options.now,
      ttlArg(options.retention.completedTtlMs),
    ])) as CancelReply;
    return reply[0] === 'not-found' ? { outcome: 'not-found' } : { outcome: reply[0], job: decodeJobReply(reply[1]) };
  }

  /** Runs the sweep in batches under one lock token, until nothing is left or the lock is lost. */
  async recoverJobs(options: RecoverJobsOptions): Promise<RecoveryReport | null> {
    const lockToken = randomUUID();
    let report: RecoveryReport | null = null;
    for (;;) {
      const reply = (await this.run('recoverJobs', this.keys.store, [
        options.now,
        options.maxInProgressMs,
        options.maxRecoveries,
        options.lockMs,
        lockToken,
        ttlArg(options.retention.completedTtlMs),
        ttlArg(options.retention.failedTtlMs),
        RECOVERY_BATCH,
        JobErrorCode.RecoveryExhausted,
        JobErrorCode.Unreadable,
      ])) as RecoveryReply;
      if (reply === null) return report;
      const [requeued, exhausted, canceled, removedEntries, more] = reply;
      report ??= { requeued: [], exhausted: [], canceled: [], removedEntries: 0 };
      report.requeued.push(...requeued);
      report.exhausted.push(...exhausted);
      report.canceled.push(...canceled);
      report.removedEntries += removedEntries;
      if (!more) return report;
    }
  }

  async stats(now: number): Promise<JobStats> {
    const [countReply, oldestWaitingAgeMs] = (await this.run('jobStats', this.keys.store, [now])) as StatsReply;
    const counts = Object.fromEntries(JOB_STATUSES.map((status) => [status, 0])) as Record<JobStatus, number>;
    for (let i = 0; i + 1 < countReply.length; i += 2) {
      counts[countReply[i] as JobStatus] = Number(countReply[i + 1]);
    }
    return {
      counts,
      waiting: counts.Queued + counts.Scheduled,
      inProgress: counts.InProgress,
      oldestWaitingAgeMs,
    };
  }

  async listJobs(options: ListJobsOptions): Promise<Job[]> {
    if (options.limit <= 0) return [];
    const reply = (await this.run('listJobs', this.keys.store, [options.status, options.limit, Date.now()])) as string[][];
    return reply.map((fields) => decodeJobReply(fields));
  }

  async retryJob(id: string, options: { now: number }): Promise<RetryJobResult> {
    const reply = (await this.run('retryJob', this.jobKeys(id), [options.now])) as RetryReply;
    return reply[0] === 'not-found' ? { outcome: 'not-found' } : { outcome: reply[0], job: decodeJobReply(reply[1]) };
  }

  /** Walks the status's index in batches, one short script each, until `limit` jobs are deleted. */
  async purgeJobs(options: PurgeJobsOptions): Promise<string[]> {
    assertPurgeableStatus(options.status);
    const purged: string[] = [];
    let offset = 0;
    while (purged.length < options.limit) {
      const [ids, next, walked] = (await this.run('purgeJobs', this.keys.store, [
        options.status,
        options.finishedBefore,
        offset,
        PURGE_BATCH,
        Math.min(options.limit - purged.length, PURGE_BATCH),
        options.now,
        options.dryRun ? 1 : 0,
      ])) as PurgeReply;
      purged.push(...ids);
      offset = next;
      if (walked) break;
    }
    return purged;
  }

  async ping(): Promise<void> {
    await this.call(() => this.client.ping(), { readOnly: true });
  }

  subscribe(listener: StoreEventListener, types?: readonly StoreEventType[]): () => void {
    return this.events.add(listener, types);
  }

  /** The eviction-policy verdict for the health indicator; null while unknown. */
  override diagnostics(): Record<string, unknown> {
    return {
      redisVersion: this.redisVersion,
      evictionPolicy: this.evictionPolicy,
      evictionPolicyOk: this.evictionPolicy === null ? null : this.evictionPolicy === 'noeviction',
    };
  }

  /** Closes the connections the store opened; a client handed in stays open. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    // A submission or completion handed to the store before close() is still written.
    await Promise.all([this.creations.drain(), this.completions.drain()]);
    this.closed = true;
    this.events.close();
    await Promise.all([closeConnection(this.subscriber), this.ownsClient && closeConnection(this.client)]);
    // Only now: an error event while closing, with no listener, would crash the process.
    for (const stop of this.stopWatching) stop();
  }

  private jobKeys(id: string): string[] {
    return [...this.keys.store, this.keys.job(id)];
  }

  /**
   * Runs a script; a SUBSCRIBE under way goes first, so this process's listeners hear its events. With
   * `then`, a PUBLISH follows the script in the same write (RedisScripts.runThenPublish); it goes out
   * whatever the script did: at worst a wake-up finds nothing to claim.
   */
  private async run(
    name: ScriptName,
    keys: readonly string[],
    args: readonly ScriptArg[],
    then?: { publish: string; message: string },
  ): Promise<unknown> {
    const subscribing = this.events.settled();
    if (subscribing) await subscribing;
    return this.call(() =>
      then
        ? this.scripts.runThenPublish(name, keys, args, then.publish, then.message)
        : this.scripts.run(name, keys, args),
    );
  }

  /**
   * A Redis call; failures to reach Redis become StoreUnavailableError (HTTP 503), which tells whether
   * a write may have happened all the same.
   */
  private async call<T>(request: () => Promise<T>, { readOnly = false } = {}): Promise<T> {
    if (this.closed) throw storeClosedError(this.type);
    try {
      return await request();
    } catch (error) {
      if (!isUnavailableError(error)) throw error;
      // "Stream isn't writeable" says only that we are not connected; the connection's own error says why.
      const cause = this.lastConnectionError ? ` (connection error: ${this.lastConnectionError})` : '';
      const outOfMemory = isOutOfMemory(error);
      if (outOfMemory) this.noteOutOfMemory();
      throw new StoreUnavailableError(this.type, `${(error as Error).message}${cause}`, {
        cause: error,
        outcomeUnknown: !readOnly && !neverRan(error),
        logged: outOfMemory,
      });
    }
  }

  /**
   * A full Redis (maxmemory under noeviction) refuses every submit until memory is freed: said once
   * per outage, not once per request.
   */
  private noteOutOfMemory(): void {
    if (!this.outOfMemory) {
      this.outOfMemory = true;
      this.logger.warn(
        'Redis is out of memory (used memory above maxmemory, policy noeviction): submits are refused with 503 ' +
          'until memory is freed, while workers keep draining the queue and finished jobs expire. Raise maxmemory, ' +
          'or shorten retention.completedTtlSeconds / retention.failedTtlSeconds.',
      );
    }
  }

  private unreadable(id: string, error: Error): null {
    this.logger.warn(`Job ${id} cannot be read from Redis and is treated as missing: ${error.message}`);
    return null;
  }

  /** Startup checks: a Redis recent enough for the scripts, and an eviction policy that never drops jobs. */
  private async inspectServer(): Promise<void> {
    this.redisVersion = await this.readRedisVersion();
    const major = this.redisVersion === null ? NaN : Number.parseInt(this.redisVersion, 10);
    if (major < MIN_REDIS_MAJOR) {
      throw new Error(
        `The Redis job store needs Redis ${MIN_REDIS_MAJOR}.0 or later (its Lua scripts declare #!lua); this server runs ${this.redisVersion}.`,
      );
    }
    this.evictionPolicy = await this.readEvictionPolicy();
    if (this.evictionPolicy !== null && this.evictionPolicy !== 'noeviction') {
      this.logger.warn(
        `Redis maxmemory-policy is '${this.evictionPolicy}': under memory pressure Redis may evict jobs, leases and idempotency keys. Set maxmemory-policy to noeviction.`,
      );
    }
  }

  private async readRedisVersion(): Promise<string | null> {
    try {
      return /^redis_version:(\S+)/m.exec(await this.client.info('server'))?.[1] ?? null;
    } catch {
      return null;
    }
  }

  /** CONFIG GET first; managed services that disable CONFIG still tell it through INFO memory. */
  private async readEvictionPolicy(): Promise<string | null> {
    let configError: Error;
    try {
      const [, policy] = (await this.client.config('GET', 'maxmemory-policy')) as string[];
      if (policy) return policy;
      configError = new Error('no value');
    } catch (error) {
      configError = error as Error;
    }
    try {
      const policy = /^maxmemory_policy:(\S+)/m.exec(await this.client.info('memory'))?.[1];
      if (policy) return policy;
    } catch {
      // Reported below with the CONFIG GET failure.
    }
    this.logger.warn(
      `Cannot read Redis maxmemory-policy (CONFIG GET: ${configError.message}); make sure it is noeviction, or Redis may evict jobs and leases.`,
    );
    return null;
  }
}

/** One job's part of a batched script call: its hash, then its arguments led by their count. */
interface BatchItem {
  key: string;
  args: string[];
}

function batchItem(key: string, args: string[]): BatchItem {
  args.unshift(String(args.length));
  return { key, args };
}

/** A batched script's answer for one job: its reply, or 'error:<message>' when its step failed. */
function batchOutcome<R>(reply: unknown): BatchOutcome<R> {
  return typeof reply === 'string' && reply.startsWith('error:')
    ? { ok: false, error: new Error(`Redis job store: ${reply.slice('error:'.length)}`) }
    : { ok: true, value: reply as R };
}


/** PEXPIRE takes a positive whole number of milliseconds. */
function ttlArg(ms: number): number {
  return Math.max(1, Math.ceil(ms));
}

function isOutOfMemory(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('OOM');
}

function isWrongType(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('WRONGTYPE');
}

/**
 * ioredis' own keyPrefix would prefix the keys we pass but not those the scripts build or the event
 * channel, splitting the store in two.
 */
function assertNoClientKeyPrefix(client: Redis): void {
  if (client.options.keyPrefix) {
    throw new Error(
      `The Redis job store does not support the ioredis keyPrefix option ('${client.options.keyPrefix}'); use the store's keyPrefix instead.`,
    );
  }
}
