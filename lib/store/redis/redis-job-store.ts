import { Logger } from '@nestjs/common';
import type { ClusterNode, ClusterOptions, RedisOptions } from 'ioredis';
import { type Job, type JobError, type JsonValue } from '../../job/index.js';
import { defaultPartitions } from '../../options/redis-store-options.js';
import {
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
import { decodeJob, decodeJobReply, encodeJsonArg, UnreadableJobError } from './redis-job-codec.js';
import { StoreKeys, type RedisKeys } from './redis-keys.js';
import { PartitionCounts } from './redis-partition-counts.js';
import { checkLayout } from './redis-layout.js';
import { RedisSubmits } from './redis-submits.js';
import { encodeRegistration, listJobs, readStats } from './redis-reads.js';
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
  /** Partitions the store is split into (docs/storage.md). Default 1, 12 on a Cluster. Fixed once the store holds data. */
  partitions?: number;
  /** @internal Where connection news goes; the operator CLI passes its own. Default: Nest's Logger. */
  logger?: StoreLogger;
  /**
   * @internal False for the operator CLI: on a prefix where no layout is recorded yet, the store does
   * not record one (its partition count is the first app's to choose). Default true.
   */
  recordLayout?: boolean;
}

type CancelReply = ['not-found'] | ['changed'] | ['canceled' | 'cancel-requested' | 'already-terminal', string[]];
type RetryReply = ['not-found'] | ['changed'] | ['requeued' | 'not-retryable', string[]];

/** Tries of a cancel or retry whose job changed between the read of its name and the script. */
const CHANGED_TRIES = 3;

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
  private readonly keys: StoreKeys;
  private readonly counts: PartitionCounts;
  private readonly client: RedisClient;
  private readonly ownsClient: boolean;
  private readonly subscriber: RedisClient;
  private readonly events: RedisEventRelay;
  /** Script calls, batching, and the mapping of failures to reach Redis (redis-calls.ts). */
  private readonly calls: RedisCalls;
  private readonly claims: RedisClaims;
  private readonly submits: RedisSubmits;
  private readonly stopWatching: (() => void)[];
  private readonly server: RedisServerFacts = { redisVersion: null, evictionPolicy: null };
  private closing: Promise<void> | null = null;
  private readonly recordLayout: boolean;

  constructor(options: RedisStoreOptions = {}) {
    super();
    this.logger = options.logger ?? new Logger(RedisJobStore.name);
    this.recordLayout = options.recordLayout ?? true;
    this.keys = new StoreKeys(options.keyPrefix, options.partitions ?? defaultPartitions(options));
    const connection = createStoreConnection(options);
    this.client = connection.client;
    this.ownsClient = connection.owned;
    assertNoClientKeyPrefix(this.client);
    this.subscriber = createSubscriberConnection(this.client);
    this.events = new RedisEventRelay(
      this.subscriber,
      this.keys.partitions.map((partition) => ({
        'job-available': partition.events,
        'cancel-requested': partition.events,
        'job-finished': partition.finished,
      })),
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
    this.counts = new PartitionCounts(
      (key) => this.calls.call(() => this.client.zcard(key), { readOnly: true }),
      this.keys,
    );
    this.claims = new RedisClaims(this.calls, this.keys, this.counts, (lease, error, options) =>
      this.failJob(lease, error, options),
    );
    this.events.onPartition = (partition, dueAt) => this.claims.mark(partition, dueAt);
    this.submits = new RedisSubmits(this.calls, this.keys, this.counts, this.claims, this.logger, (id) =>
      this.getJob(id),
    );
    const stopRememberingErrors = this.calls.watchConnectionErrors();
    this.stopWatching = [
      watchConnection(this.client, 'command', this.logger),
      watchConnection(this.subscriber, 'subscriber', this.logger, { shardedSubscriber: true }),
      stopRememberingErrors,
    ];
  }

  /**
   * Connects and checks the server. Never fails for an unreachable Redis: it logs, keeps reconnecting,
   * and checks the server once it is there; whether to stop the boot is the caller's call (ping()).
   * Until that check has passed, every call fails with StoreUnavailableError (a store on the wrong key
   * layout or partition count must not write under it); when it fails, calls keep failing with its
   * message. Fails for a Redis too old for the scripts, or a layout it must not use.
   */
  async init(): Promise<void> {
    try {
      await connect(this.client, CONNECT_TIMEOUT_MS);
    } catch (error) {
      this.logger.warn(
        `Redis is unreachable at startup (${(error as Error).message}); the store keeps reconnecting, and its calls fail with StoreUnavailableError meanwhile.`,
      );
      this.calls.refuseCalls(
        `Redis was unreachable when the store started (${(error as Error).message}); it serves once it has checked the server`,
      );
      this.checkWhenReady();
      return;
    }
    await this.inspectServer();
  }

  /** Checks the server on the next connection; a check that fails (the layout, or the connection again) waits for the next one. */
  private checkWhenReady(): void {
    this.client.once('ready', () => {
      this.inspectServer().then(
        () => this.calls.refuseCalls(null),
        (failure: Error) => {
          this.logger.error(failure.message);
          this.calls.refuseCalls(`the store cannot use this Redis: ${failure.message}`);
          this.checkWhenReady();
        },
      );
    });
  }

  createJob(input: NewJob, options: CreateJobOptions): Promise<CreateJobResult> {
    return this.submits.createJob(input, options);
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
    const byPartition = new Map<number, Lease[]>();
    for (const lease of leases) {
      const index = this.keys.partitionIndexOf(lease.jobId);
      byPartition.set(index, [...(byPartition.get(index) ?? []), lease]);
    }
    const replies = await Promise.all(
      [...byPartition].map(([index, group]) => {
        const partition = this.keys.partitions[index]!;
        return this.calls.run(
          'renewLeases',
          group.flatMap((lease) => [partition.job(lease.jobId), partition.leases(lease.name)]),
          [options.now, options.leaseMs, ...group.flatMap((lease) => [lease.jobId, lease.token, lease.name])],
        ) as Promise<[string[], string[]]>;
      }),
    );
    return {
      lost: replies.flatMap(([lost]) => lost),
      cancelRequested: replies.flatMap(([, cancelRequested]) => cancelRequested),
    };
  }

  async reportProgress(lease: Lease, progress: JsonValue, now: number): Promise<boolean> {
    const recorded = await this.calls.run(
      'reportProgress',
      [this.keys.job(lease.jobId)],
      [now, lease.token, lease.name, encodeJsonArg(progress)],
    );
    return recorded === 1;
  }

  completeJob(
    lease: Lease,
    result: JsonValue | null,
    options: { now: number; retention: Retention },
  ): Promise<CompleteOutcome> {
    const index = this.keys.partitionIndexOf(lease.jobId);
    const partition = this.keys.partitions[index]!;
    return this.calls.complete(
      index,
      batchItem([partition.job(lease.jobId), partition.leases(lease.name)], lease.name, [
        String(options.now),
        lease.token,
        lease.name,
        encodeJsonArg(result),
        String(ttlArg(options.retention.completedTtlMs)),
        options.retention.dropPayloadOnFinish ? '1' : '',
      ]),
    );
  }

  async failJob(lease: Lease, error: JobError, options: FailOptions): Promise<FailOutcome> {
    const index = this.keys.partitionIndexOf(lease.jobId);
    const partition = this.keys.partitions[index]!;
    const status = partition.statusIndex;
    const outcome = (await this.calls.run(
      'failJob',
      [status.InProgress, status.Scheduled, status.Failed, status.Canceled, ...leasedJobKeys(partition, lease)],
      [
        partition.prefix,
        index,
        options.now,
        lease.token,
        lease.name,
        JSON.stringify(error),
        options.retryAt ?? '',
        ttlArg(options.retention.completedTtlMs),
        ttlArg(options.retention.failedTtlMs),
      ],
    )) as FailOutcome;
    if (outcome === 'scheduled') this.claims.mark(index, options.retryAt ?? undefined);
    return outcome;
  }

  async releaseJob(lease: Lease, options: { now: number; retention: Retention }): Promise<ReleaseOutcome> {
    const index = this.keys.partitionIndexOf(lease.jobId);
    const partition = this.keys.partitions[index]!;
    const status = partition.statusIndex;
    const outcome = (await this.calls.run(
      'releaseJob',
      [status.InProgress, status.Queued, status.Canceled, ...leasedJobKeys(partition, lease)],
      [
        partition.prefix,
        index,
        options.now,
        lease.token,
        lease.name,
        ttlArg(options.retention.completedTtlMs),
        await this.calls.headElsewhere(this.keys.partitions, index, lease.name),
      ],
    )) as ReleaseOutcome;
    if (outcome === 'released') this.claims.mark(index, undefined);
    return outcome;
  }

  async cancelJob(id: string, options: { now: number; retention: Retention }): Promise<CancelResult> {
    const partition = this.keys.partitionOf(id);
    const status = partition.statusIndex;
    const reply = await this.withNameOf(
      id,
      (name) =>
        this.calls.run(
          'cancelJob',
          [
            status.Queued,
            status.Scheduled,
            status.Canceled,
            partition.idempotencyExpiries,
            partition.waiting(name),
            partition.job(id),
          ],
          [partition.prefix, options.now, ttlArg(options.retention.completedTtlMs), name],
        ) as Promise<CancelReply>,
    );
    return reply[0] === 'not-found' ? { outcome: 'not-found' } : { outcome: reply[0], job: decodeJobReply(reply[1]) };
  }

  async recoverJobs(options: RecoverJobsOptions): Promise<RecoveryReport | null> {
    const report = await recoverInBatches(this.calls, this.client, this.keys, options);
    for (const id of report?.requeued ?? []) this.claims.mark(this.keys.partitionIndexOf(id), undefined);
    return report;
  }

  stats(now: number): Promise<JobStats> {
    return readStats(this.calls, this.client, this.keys, now);
  }

  async registerWorker(registration: WorkerRegistration, options: { now: number; ttlMs: number }): Promise<void> {
    const value = encodeRegistration(options.now + options.ttlMs, registration.names);
    await this.calls.call(() => this.client.hset(this.keys.workers, registration.workerId, value));
  }

  async unregisterWorker(workerId: string): Promise<void> {
    await this.calls.call(() => this.client.hdel(this.keys.workers, workerId));
  }

  listJobs(options: ListJobsOptions): Promise<JobPage> {
    return listJobs(this.calls, this.client, this.keys, options);
  }

  async retryJob(id: string, options: { now: number }): Promise<RetryJobResult> {
    const index = this.keys.partitionIndexOf(id);
    const partition = this.keys.partitions[index]!;
    const status = partition.statusIndex;
    const reply = await this.withNameOf(
      id,
      (name) =>
        this.calls.run(
          'retryJob',
          [
            status.Failed,
            status.Canceled,
            status.Queued,
            partition.idempotency,
            partition.idempotencyExpiries,
            partition.sequence,
            partition.names,
            partition.waiting(name),
            partition.job(id),
          ],
          [partition.prefix, index, options.now, name, this.submits.nextSequence()],
        ) as Promise<RetryReply>,
    );
    if (reply[0] === 'requeued') this.claims.mark(index, undefined);
    return reply[0] === 'not-found' ? { outcome: 'not-found' } : { outcome: reply[0], job: decodeJobReply(reply[1]) };
  }

  purgeJobs(options: PurgeJobsOptions): Promise<string[]> {
    return purgeInBatches(this.calls, this.client, this.keys, options);
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

  /**
   * Runs a script that needs the keys of the job's name: reads the name, then runs it; when the job
   * changed meanwhile (the script answers 'changed'), reads again.
   */
  private async withNameOf<R extends [string, ...unknown[]]>(
    id: string,
    script: (name: string) => Promise<R | ['changed']>,
  ): Promise<Exclude<R, ['changed']> | ['not-found']> {
    for (let tries = 0; tries < CHANGED_TRIES; tries++) {
      let fields: (string | null)[];
      try {
        fields = await this.calls.call(() => this.client.hmget(this.keys.job(id), 'status', 'name'), {
          readOnly: true,
        });
      } catch (error) {
        if (!isWrongType(error)) throw error;
        return ['not-found'];
      }
      if (fields[0] === null && fields[1] === null) return ['not-found'];
      // A hash without its name (changed outside the store) is still answered, as Failed if it was failed.
      const name = fields[1] ?? '';
      const reply = await script(name);
      if (reply[0] !== 'changed') return reply as Exclude<R, ['changed']>;
    }
    throw new Error(`Redis job store: job ${id} kept changing while it was read; try again.`);
  }

  private unreadable(id: string, error: Error): null {
    this.logger.warn(`Job ${id} cannot be read from Redis and is treated as missing: ${error.message}`);
    return null;
  }

  private async inspectServer(): Promise<void> {
    await inspectServer(this.client, this.logger, this.server);
    await checkLayout(this.client, this.keys, this.recordLayout);
  }
}

/** The keys of a leased job that failJob and releaseJob move it between, after their status indexes. */
function leasedJobKeys(partition: RedisKeys, lease: Lease): string[] {
  return [
    partition.started,
    partition.idempotencyExpiries,
    partition.leases(lease.name),
    partition.waiting(lease.name),
    partition.job(lease.jobId),
  ];
}

function isWrongType(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('WRONGTYPE');
}
