import type { CompleteOutcome } from '../job-store.js';
import { storeClosedError } from '../store-closed.js';
import { StoreUnavailableError } from '../../errors/store-unavailable.error.js';
import { CallBatcher, type BatchOutcome } from './call-batcher.js';
import { isUnavailableError, neverRan, type RedisClient, type StoreLogger } from './redis-connections.js';
import { JOB_AVAILABLE_MESSAGE, type RedisEventRelay } from './redis-event-relay.js';
import type { RedisKeys } from './redis-keys.js';
import { ReplicaWaiter, type ReplicaWait } from './redis-replica-wait.js';
import type { RedisScripts, ScriptArg, ScriptName } from './redis-scripts.js';

const STORE_TYPE = 'redis';
/** Submissions or completions one script call carries at most (each is a few Redis commands). */
const MAX_BATCH = 64;
/** Scripts that write nothing: no replica wait after them. */
const READ_ONLY_SCRIPTS: ReadonlySet<ScriptName> = new Set<ScriptName>(['jobStats', 'listJobs']);

export type CreateReply = ['created'] | ['queue-full', number] | ['existing', string[]];

/** One job's part of a batched script call: its hash, then its arguments led by their count. */
export interface BatchItem {
  key: string;
  args: string[];
}

export function batchItem(key: string, args: string[]): BatchItem {
  args.unshift(String(args.length));
  return { key, args };
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
  /** Submissions of one moment go to Redis in one script call (see CallBatcher); completions too. */
  readonly creations = new CallBatcher<BatchItem, CreateReply>((batch) => this.runBatch('createJob', batch), MAX_BATCH);
  readonly completions = new CallBatcher<BatchItem, CompleteOutcome>(
    (batch) => this.runBatch('completeJob', batch),
    MAX_BATCH,
  );

  /** `store.waitForReplicas`: WAIT after each write; null when off. */
  private readonly replicas: ReplicaWaiter | null;

  constructor(
    private readonly client: RedisClient,
    private readonly scripts: RedisScripts,
    private readonly events: RedisEventRelay,
    private readonly keys: RedisKeys,
    private readonly logger: StoreLogger,
    replicaWait: ReplicaWait | null = null,
  ) {
    this.replicas = replicaWait && new ReplicaWaiter(client, replicaWait, logger);
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
    await Promise.all([this.creations.drain(), this.completions.drain()]);
    this.closed = true;
  }

  /**
   * Runs a script; a SUBSCRIBE under way goes first, so this process's listeners hear its events. With
   * `then`, a PUBLISH follows the script in the same write (RedisScripts.runThenPublish); it goes out
   * whatever the script did: at worst a wake-up finds nothing to claim. With `store.waitForReplicas`, a
   * write resolves once the replicas hold it, or logs that they do not (ReplicaWaiter).
   */
  async run(
    name: ScriptName,
    keys: readonly string[],
    args: readonly ScriptArg[],
    then?: { publish: string; message: string },
  ): Promise<unknown> {
    const reply = await this.runScript(name, keys, args, then);
    if (this.replicas && !READ_ONLY_SCRIPTS.has(name)) await this.replicas.confirmWrite(keys[0]!);
    return reply;
  }

  private async runScript(
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
  async call<T>(request: () => Promise<T>, { readOnly = false } = {}): Promise<T> {
    if (this.closed) throw storeClosedError(STORE_TYPE);
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
    const replies = (await this.runScript(name, keys, args, then)) as unknown[];
    const outcomes = replies.map(batchOutcome<R>);
    if (!this.replicas) return outcomes;
    if (name === 'completeJob') {
      await this.replicas.confirmWrite(keys[0]!);
      return outcomes;
    }
    // A submit is answered 202 only once the replicas hold its job.
    const unconfirmed = await this.replicas.confirmSubmit(keys[0]!);
    if (!unconfirmed) return outcomes;
    return outcomes.map((outcome) =>
      outcome.ok && (outcome.value as CreateReply)[0] === 'created' ? { ok: false, error: unconfirmed } : outcome,
    );
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
