import { Logger } from '@nestjs/common';
import type { ClusterNode, ClusterOptions, RedisOptions } from 'ioredis';
import { JOB_STATUSES, JobStatus, type Job, type JobError, type JsonValue } from '../../job/index.js';
import {
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
  type JobPage,
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
  type WorkerRegistration,
} from '../job-store.js';
import { batchItem, RedisCalls, ttlArg } from './redis-calls.js';
import { RedisClaims } from './redis-claims.js';
import { purgeInBatches, recoverInBatches } from './redis-sweeps.js';
import {
  closeConnection,
  connect,
  CONNECT_TIMEOUT_MS,
  createStoreConnection,
  createSubscriberConnection,
  type RedisClient,
  watchConnection,
  type StoreLogger,
} from './redis-connections.js';
import { RedisEventRelay } from './redis-event-relay.js';
import { newQueuedJob } from '../../job/job-records.js';
import {
  decodeJob,
  decodeJobReply,
  decodeJobReplyLeniently,
  encodeQueuedJob,
  encodeJsonArg,
  UnreadableJobError,
} from './redis-job-codec.js';
import { idempotencyDigest, RedisKeys } from './redis-keys.js';
import type { ReplicaWait } from './redis-replica-wait.js';
import { RedisScripts } from './redis-scripts.js';
import { assertNoClientKeyPrefix, inspectServer, type RedisServerFacts } from './redis-server-checks.js';

export type { StoreLogger } from './redis-connections.js';

/** `new RedisJobStore(options)`: the same settings as the `store: { type: 'redis' }` option. */
export interface RedisStoreOptions {
  /** `redis://` or `rediss://` URL; without it, ioredis' defaults (localhost:6379). */
  url?: string;
  /** ioredis options, merged over the URL's. The fail-fast settings are the store's (redis-connections.ts). */
  options?: RedisOptions;
  /** An existing connection for commands (a `Redis` or a `Cluster`); the store never closes it. */
  client?: RedisClient;
  /** A Redis Cluster: its seed nodes and ioredis cluster options. */
  cluster?: { nodes: readonly ClusterNode[]; options?: ClusterOptions };
  /** Wait until this many replicas have each write (Redis `WAIT`), at most `timeoutMs`. Off by default. */
  waitForReplicas?: ReplicaWait;
  /** Starts every key; must hold a `{hash tag}`. Default `{async-endpoints}`. */
  keyPrefix?: string;
  /** @internal Where connection news goes; the operator CLI passes its own. Default: Nest's Logger. */
  logger?: StoreLogger;
}

type CancelReply = ['not-found'] | ['canceled' | 'cancel-requested' | 'already-terminal', string[]];
type RetryReply = ['not-found'] | ['requeued' | 'not-retryable', string[]];
type StatsReply = [(string | number)[], number | null];

/**
 * The production store: jobs in Redis, shared by every process. Each state change is one Lua script
 * (one round trip), fenced by the lease token where a worker makes it; see common.lua for the layout.
 * A command connection that fails fast, and a pub/sub connection that waits and reconnects, for events.
 * Script calls and batching are RedisCalls' (redis-calls.ts), the claim RedisClaims' (redis-claims.ts),
 * the batched sweeps in redis-sweeps.ts, the startup checks in redis-server-checks.ts.
 */
export class RedisJobStore extends JobStore {
  readonly type = 'redis';

  private readonly logger: StoreLogger;
  private readonly keys: RedisKeys;
  private readonly client: RedisClient;
  private readonly ownsClient: boolean;
  private readonly subscriber: RedisClient;
  private readonly events: RedisEventRelay;
  /** Script calls, batching, and the mapping of failures to reach Redis (redis-calls.ts). */
  private readonly calls: RedisCalls;
  private readonly claims: RedisClaims;
  private readonly stopWatching: (() => void)[];
  private readonly server: RedisServerFacts = { redisVersion: null, evictionPolicy: null };
  private closing: Promise<void> | null = null;

  constructor(options: RedisStoreOptions = {}) {
    super();
    this.logger = options.logger ?? new Logger(RedisJobStore.name);
    this.keys = new RedisKeys(options.keyPrefix);
    const connection = createStoreConnection(options);
    this.client = connection.client;
    this.ownsClient = connection.owned;
    assertNoClientKeyPrefix(this.client);
    this.subscriber = createSubscriberConnection(this.client);
    this.events = new RedisEventRelay(
      this.subscriber,
      { 'job-available': this.keys.events, 'cancel-requested': this.keys.events, 'job-finished': this.keys.finished },
      this.logger,
    );
    this.calls = new RedisCalls(
      this.client,
      new RedisScripts(this.client),
      this.events,
      this.keys,
      this.logger,
      options.waitForReplicas,
    );
    this.claims = new RedisClaims(this.calls, this.keys, (lease, error, options) =>
      this.failJob(lease, error, options),
    );
    const stopRememberingErrors = this.calls.watchConnectionErrors();
    this.stopWatching = [
      watchConnection(this.client, 'command', this.logger),
      watchConnection(this.subscriber, 'subscriber', this.logger),
      stopRememberingErrors,
    ];
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
    const reply = await this.calls.creations.push(
      batchItem(this.keys.job(input.id), [
        input.id,
        String(options.now),
        String(options.maximumQueueSize),
        digest,
        ...encodeQueuedJob(job),
      ]),
    );
    this.calls.submitAccepted();
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
          this.logger.warn(
            `Job ${unreadable.id} cannot be read from Redis; a submission naming it was refused as a conflict: ${error.message}`,
          );
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
      fields = await this.calls.call(() => this.client.hgetall(this.keys.job(id)), { readOnly: true });
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

  claimDueJobs(options: ClaimOptions): Promise<ClaimedJob[]> {
    return this.claims.claimDueJobs(options);
  }

  async renewLeases(leases: Lease[], options: { now: number; leaseMs: number }): Promise<RenewResult> {
    if (leases.length === 0) return { lost: [], cancelRequested: [] };
    const [lost, cancelRequested] = (await this.calls.run(
      'renewLeases',
      [...this.keys.store, ...leases.map((lease) => this.keys.job(lease.jobId))],
      [options.now, options.leaseMs, ...leases.flatMap((lease) => [lease.jobId, lease.token])],
    )) as [string[], string[]];
    return { lost, cancelRequested };
  }

  async reportProgress(lease: Lease, progress: JsonValue, now: number): Promise<boolean> {
    const recorded = await this.calls.run('reportProgress', this.jobKeys(lease.jobId), [
      now,
      lease.token,
      encodeJsonArg(progress),
    ]);
    return recorded === 1;
  }

  completeJob(
    lease: Lease,
    result: JsonValue | null,
    options: { now: number; retention: Retention },
  ): Promise<CompleteOutcome> {
    return this.calls.completions.push(
      batchItem(this.keys.job(lease.jobId), [
        String(options.now),
        lease.token,
        encodeJsonArg(result),
        String(ttlArg(options.retention.completedTtlMs)),
        options.retention.dropPayloadOnFinish ? '1' : '',
      ]),
    );
  }

  async failJob(lease: Lease, error: JobError, options: FailOptions): Promise<FailOutcome> {
    return (await this.calls.run('failJob', this.jobKeys(lease.jobId), [
      options.now,
      lease.token,
      JSON.stringify(error),
      options.retryAt ?? '',
      ttlArg(options.retention.completedTtlMs),
      ttlArg(options.retention.failedTtlMs),
    ])) as FailOutcome;
  }

  async releaseJob(lease: Lease, options: { now: number; retention: Retention }): Promise<ReleaseOutcome> {
    return (await this.calls.run('releaseJob', this.jobKeys(lease.jobId), [
      options.now,
      lease.token,
      ttlArg(options.retention.completedTtlMs),
    ])) as ReleaseOutcome;
  }

  async cancelJob(id: string, options: { now: number; retention: Retention }): Promise<CancelResult> {
    const reply = (await this.calls.run('cancelJob', this.jobKeys(id), [
      options.now,
      ttlArg(options.retention.completedTtlMs),
    ])) as CancelReply;
    return reply[0] === 'not-found' ? { outcome: 'not-found' } : { outcome: reply[0], job: decodeJobReply(reply[1]) };
  }

  recoverJobs(options: RecoverJobsOptions): Promise<RecoveryReport | null> {
    return recoverInBatches(this.calls, this.keys, options);
  }

  async stats(now: number): Promise<JobStats> {
    const [countReply, oldestWaitingAgeMs] = (await this.calls.run('jobStats', this.keys.store, [now])) as StatsReply;
    const counts = Object.fromEntries(JOB_STATUSES.map((status) => [status, 0])) as Record<JobStatus, number>;
    for (let i = 0; i + 1 < countReply.length; i += 2) {
      counts[countReply[i] as JobStatus] = Number(countReply[i + 1]);
    }
    return {
      counts,
      waiting: counts.Queued + counts.Scheduled,
      inProgress: counts.InProgress,
      oldestWaitingAgeMs,
      names: {}, // TRANSITIONAL (v2-contract): per-name stats come with Store v2
    };
  }

  // TRANSITIONAL (v2-contract): replaced by Store v2.
  async registerWorker(_registration: WorkerRegistration, _options: { now: number; ttlMs: number }): Promise<void> {}

  async unregisterWorker(_workerId: string): Promise<void> {}

  async listJobs(options: ListJobsOptions): Promise<JobPage> {
    // TRANSITIONAL (v2-contract): no cursor or filters yet.
    if (options.limit <= 0) return { jobs: [], nextCursor: null };
    const reply = (await this.calls.run('listJobs', this.keys.store, [
      options.status,
      options.limit,
      Date.now(),
    ])) as string[][];
    return { jobs: reply.map((fields) => decodeJobReply(fields)), nextCursor: null };
  }

  async retryJob(id: string, options: { now: number }): Promise<RetryJobResult> {
    const reply = (await this.calls.run('retryJob', this.jobKeys(id), [options.now])) as RetryReply;
    return reply[0] === 'not-found' ? { outcome: 'not-found' } : { outcome: reply[0], job: decodeJobReply(reply[1]) };
  }

  purgeJobs(options: PurgeJobsOptions): Promise<string[]> {
    return purgeInBatches(this.calls, this.keys, options);
  }

  async ping(): Promise<void> {
    await this.calls.call(() => this.client.ping(), { readOnly: true });
  }

  subscribe(listener: StoreEventListener, types?: readonly StoreEventType[]): () => void {
    return this.events.add(listener, types);
  }

  /** The eviction-policy verdict for the health indicator; null while unknown. */
  override diagnostics(): Record<string, unknown> {
    return {
      redisVersion: this.server.redisVersion,
      evictionPolicy: this.server.evictionPolicy,
      evictionPolicyOk: this.server.evictionPolicy === null ? null : this.server.evictionPolicy === 'noeviction',
    };
  }

  /** Closes the connections the store opened; a client handed in stays open. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    await this.calls.close();
    this.events.close();
    await Promise.all([closeConnection(this.subscriber), this.ownsClient && closeConnection(this.client)]);
    // Only now: an error event while closing, with no listener, would crash the process.
    for (const stop of this.stopWatching) stop();
  }

  private jobKeys(id: string): string[] {
    return [...this.keys.store, this.keys.job(id)];
  }

  private unreadable(id: string, error: Error): null {
    this.logger.warn(`Job ${id} cannot be read from Redis and is treated as missing: ${error.message}`);
    return null;
  }

  private inspectServer(): Promise<void> {
    return inspectServer(this.client, this.logger, this.server);
  }
}

function isWrongType(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('WRONGTYPE');
}
