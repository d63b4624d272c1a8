import type { CompleteOutcome } from '../job-store.js';
import { storeClosedError } from '../store-closed.js';
import { StoreUnavailableError } from '../../errors/store-unavailable.error.js';
import { BatchGroup, CallBatcher, type BatchOutcome } from './call-batcher.js';
import { isUnavailableError, neverRan, type RedisClient, type StoreLogger } from './redis-connections.js';
import { jobAvailableMessage, type RedisEventRelay } from './redis-event-relay.js';
import type { RedisKeys, StoreKeys } from './redis-keys.js';
import { ReplicaWaiter, type ReplicaWait } from './redis-replica-wait.js';
import type { RedisScripts, ScriptArg, ScriptName } from './redis-scripts.js';

const STORE_TYPE = 'redis';
/** Submissions or completions one script call carries at most (each is a few Redis commands). */
const MAX_BATCH = 64;
/** Scripts that write nothing: no replica wait after them. */
const READ_ONLY_SCRIPTS: ReadonlySet<ScriptName> = new Set<ScriptName>(['jobStats']);

export type CreateReply = ['created'] | ['queue-full', number] | ['existing', string[]] | ['mapped', string];

/** One job's part of a batched script call: its keys, then its arguments led by their count. */
export interface BatchItem {
  keys: string[];
  args: string[];
  /** The job's name, for the job-available event a submission's batch sends. */
  name: string;
}

/** A claim's part of a script call: the names claimed, and its arguments (claimArgs in claim-due.lua). */
export interface ClaimCall {
  names: readonly string[];
  args: readonly string[];
}

export function batchItem(keys: string[], name: string, args: string[]): BatchItem {
  args.unshift(String(args.length));
  return { keys, args, name };
}

/**
 * How the Redis store reaches Redis: its scripts, one at a time or in batches, and the mapping of
 * failures to reach Redis to StoreUnavailableError. Calls fail once close() has sent what was waiting.
 */
export class RedisCalls {
  /** The command connection's last error while it is down, to say why a call could not be sent. */
  private lastConnectionError: string | null = null;
  /** Whether a write was refused for lack of memory since the last submit that went through. */
  private outOfMemory = false;
  /** Set once the batches still waiting at close() were sent: calls fail from then on. */
  private closed = false;
  /** Why every call fails at once, until the store has checked the server (see RedisJobStore.init). */
  private refusal: string | null = null;
  /**
   * Per partition, submissions of one moment go to Redis in one script call (see CallBatcher);
   * completions too. One partition per call: on a Cluster, a script's keys lie in one slot. The
   * partitions' batchers of each kind share a BatchGroup, so that only a call of a quiet moment goes alone.
   */
  private readonly creationBatchers: CallBatcher<BatchItem, CreateReply>[];
  private readonly completionBatchers: CallBatcher<BatchItem, CompleteOutcome>[];

  /** `store.waitForReplicas`: WAIT after each write; null when off. */
  private readonly replicas: ReplicaWaiter | null;

  constructor(
    private readonly client: RedisClient,
    private readonly scripts: RedisScripts,
    private readonly events: RedisEventRelay,
    private readonly keys: StoreKeys,
    private readonly logger: StoreLogger,
    replicaWait: ReplicaWait | null = null,
  ) {
    this.replicas = replicaWait && new ReplicaWaiter(client, replicaWait, logger);
    const creations = new BatchGroup();
    const completions = new BatchGroup();
    this.creationBatchers = keys.partitions.map(
      (partition, index) =>
        new CallBatcher<BatchItem, CreateReply>(
          (batch) => this.runCreations(partition, index, batch),
          MAX_BATCH,
          creations,
        ),
    );
    this.completionBatchers = keys.partitions.map(
      (partition) =>
        new CallBatcher<BatchItem, CompleteOutcome>(
          async (batch) => (await this.runCompletions(partition, batch)).outcomes,
          MAX_BATCH,
          completions,
        ),
    );
  }

  /**
   * Refuses every call with `reason` (a StoreUnavailableError, which never ran), or serves again
   * (null): a store that could not check the server's layout must not read or write under it.
   */
  refuseCalls(reason: string | null): void {
    this.refusal = reason;
  }

  /** Stores a submission in partition `index` (createJobs.lua), batched with those of the moment. */
  create(index: number, item: BatchItem): Promise<CreateReply> {
    return this.creationBatchers[index]!.push(item);
  }

  /** Records a completion in partition `index` (completeJobs.lua), batched with those of the moment. */
  complete(index: number, item: BatchItem): Promise<CompleteOutcome> {
    return this.completionBatchers[index]!.push(item);
  }

  /**
   * Runs a claim in partition `index` (its reply as claimJobs.lua answers it). When completions of that
   * partition are waiting for their batch, the claim rides on them: one completeJobs.lua call records
   * them and then claims, one round trip instead of two. That is the common case under load: a worker's
   * attempts free their slots, their completions wait for the moment's batch, and the claim for the
   * freed slots follows at once.
   */
  claim(index: number, call: ClaimCall): Promise<unknown> {
    const partition = this.keys.partitions[index]!;
    const riding = this.completionBatchers[index]!.ride((batch) => this.runCompletions(partition, batch, call));
    if (riding) {
      return riding.then((reply) => {
        const outcome = batchOutcome<unknown>(reply);
        if (!outcome.ok) throw outcome.error;
        return outcome.value;
      });
    }
    const status = partition.statusIndex;
    const keys = [
      partition.started,
      status.Queued,
      status.Scheduled,
      status.InProgress,
      status.Failed,
      partition.idempotencyExpiries,
    ];
    for (const name of call.names) keys.push(partition.waiting(name), partition.leases(name));
    return this.run('claimJobs', keys, [partition.prefix, ...call.args]);
  }

  /** Keeps the command connection's last error, to say why calls fail; returns what stops it. */
  watchConnectionErrors(): () => void {
    const rememberError = (error: Error) => {
      this.lastConnectionError = error.message;
    };
    const forgetError = () => {
      this.lastConnectionError = null;
    };
    this.client.on('error', rememberError).on('ready', forgetError);
    return () => this.client.off('error', rememberError).off('ready', forgetError);
  }

  /** The names with a stored job in a partition (its names set), read before a script declares their keys. */
  storedNames(partition: RedisKeys): Promise<string[]> {
    return this.call(() => this.client.smembers(partition.names), { readOnly: true });
  }

  /**
   * The due time of the head of `name`'s queue over the partitions other than `except`, as a script
   * argument ('' for none): a job requeued in one partition goes ahead of those due in the others.
   */
  async headElsewhere(partitions: readonly RedisKeys[], except: number, name: string): Promise<string> {
    if (partitions.length === 1) return '';
    const heads = await Promise.all(
      partitions.map((partition, index) =>
        index === except
          ? null
          : this.call(() => this.client.zrange(partition.waiting(name), '0', '0', 'WITHSCORES'), { readOnly: true }),
      ),
    );
    let head = Infinity;
    for (const reply of heads) if (reply?.[1] !== undefined) head = Math.min(head, Number(reply[1]));
    return head === Infinity ? '' : String(head);
  }

  /** A submit went through: Redis has memory again, if it had none. */
  submitAccepted(): void {
    if (this.outOfMemory) {
      this.outOfMemory = false;
      this.logger.log('Redis accepts submissions again: it has memory to spare below maxmemory.');
    }
  }

  /** Sends the submissions and completions still waiting; every call fails from then on. */
  async close(): Promise<void> {
    // A submission or completion handed to the store before close() is still written.
    await Promise.all([...this.creationBatchers, ...this.completionBatchers].map((batcher) => batcher.drain()));
    this.closed = true;
  }

  /**
   * Runs a script; a SSUBSCRIBE under way goes first, so this process's listeners hear its events. With
   * `then`, a SPUBLISH follows the script in the same write (RedisScripts.runThenPublish); it goes out
   * whatever the script did: at worst a wake-up finds nothing to claim. With `store.waitForReplicas`, a
   * write resolves once the replicas hold it, or logs that they do not (ReplicaWaiter).
   */
  async run(
    name: ScriptName,
    keys: readonly string[],
    args: readonly ScriptArg[],
    then?: { publish: string; messages: readonly string[] },
  ): Promise<unknown> {
    const reply = await this.runScript(name, keys, args, then);
    if (this.replicas && !READ_ONLY_SCRIPTS.has(name)) await this.replicas.confirmWrite(keys[0]!);
    return reply;
  }

  private async runScript(
    name: ScriptName,
    keys: readonly string[],
    args: readonly ScriptArg[],
    then?: { publish: string; messages: readonly string[] },
  ): Promise<unknown> {
    const subscribing = this.events.settled();
    if (subscribing) await subscribing;
    return this.call(() =>
      then
        ? this.scripts.runThenPublish(name, keys, args, then.publish, then.messages)
        : this.scripts.run(name, keys, args),
    );
  }

  /**
   * A Redis call; failures to reach Redis become StoreUnavailableError (HTTP 503), which tells whether
   * a write may have happened all the same.
   */
  async call<T>(request: () => Promise<T>, { readOnly = false } = {}): Promise<T> {
    if (this.closed) throw storeClosedError(STORE_TYPE);
    if (this.refusal) {
      const cause = this.lastConnectionError ? ` (connection error: ${this.lastConnectionError})` : '';
      throw new StoreUnavailableError(STORE_TYPE, `${this.refusal}${cause}`, { outcomeUnknown: false });
    }
    try {
      return await request();
    } catch (error) {
      if (!isUnavailableError(error)) throw error;
      // "Stream isn't writeable" says only that we are not connected; the connection's own error says why.
      const cause = this.lastConnectionError ? ` (connection error: ${this.lastConnectionError})` : '';
      const outOfMemory = isOutOfMemory(error);
      if (outOfMemory) this.noteOutOfMemory();
      throw new StoreUnavailableError(STORE_TYPE, `${(error as Error).message}${cause}`, {
        cause: error,
        outcomeUnknown: !readOnly && !neverRan(error),
        logged: outOfMemory,
      });
    }
  }

  /** One createJobs.lua call for a batch; it wakes the workers of each name once, right after. */
  private async runCreations(
    partition: RedisKeys,
    index: number,
    batch: BatchItem[],
  ): Promise<BatchOutcome<CreateReply>[]> {
    const status = partition.statusIndex;
    const keys = [
      status.Queued,
      status.Scheduled,
      status.Completed,
      status.Failed,
      status.Canceled,
      partition.idempotency,
      partition.idempotencyExpiries,
      partition.sequence,
      partition.names,
    ];
    const args: string[] = [];
    const names = new Set<string>();
    for (const item of batch) {
      keys.push(...item.keys);
      args.push(...item.args);
      names.add(item.name);
    }
    const messages = [...names].map((name) => jobAvailableMessage(name, index));
    const refused = this.replicas?.refusesSubmit(keys[0]!);
    if (refused) return batch.map(() => ({ ok: false, error: refused }));
    const replies = (await this.runScript('createJobs', keys, args, {
      publish: partition.events,
      messages,
    })) as unknown[];
    const outcomes = replies.map(batchOutcome<CreateReply>);
    if (!this.replicas) return outcomes;
    // A submit is answered 202 only once the replicas hold its job.
    const unconfirmed = await this.replicas.confirmSubmit(keys[0]!);
    if (!unconfirmed) return outcomes;
    return outcomes.map((outcome) =>
      outcome.ok && outcome.value[0] === 'created' ? { ok: false, error: unconfirmed } : outcome,
    );
  }

  /**
   * One completeJobs.lua call for a batch; with `claim`, the claim rides on it (see claim()) and its
   * reply comes back as the value.
   */
  private async runCompletions(
    partition: RedisKeys,
    batch: BatchItem[],
    claim?: ClaimCall,
  ): Promise<{ outcomes: BatchOutcome<CompleteOutcome>[]; value: unknown }> {
    const keys = [
      partition.statusIndex.InProgress,
      partition.statusIndex.Completed,
      partition.started,
      partition.idempotencyExpiries,
    ];
    const args: string[] = [partition.prefix, String(batch.length)];
    for (const item of batch) {
      keys.push(...item.keys);
      args.push(...item.args);
    }
    if (claim) {
      const status = partition.statusIndex;
      keys.push(status.Queued, status.Scheduled, status.Failed);
      for (const name of claim.names) keys.push(partition.waiting(name), partition.leases(name));
      args.push(...claim.args);
    }
    const reply = (await this.run('completeJobs', keys, args)) as unknown[];
    const [replies, value] = claim ? (reply as [unknown[], unknown]) : [reply, undefined];
    return { outcomes: replies.map(batchOutcome<CompleteOutcome>), value };
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
}

/** A batched script's answer for one job: its reply, or 'error:<message>' when its step failed. */
function batchOutcome<R>(reply: unknown): BatchOutcome<R> {
  return typeof reply === 'string' && reply.startsWith('error:')
    ? { ok: false, error: new Error(`Redis job store: ${reply.slice('error:'.length)}`) }
    : { ok: true, value: reply as R };
}

/** PEXPIRE takes a positive whole number of milliseconds. */
export function ttlArg(ms: number): number {
  return Math.max(1, Math.ceil(ms));
}

function isOutOfMemory(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('OOM');
}
