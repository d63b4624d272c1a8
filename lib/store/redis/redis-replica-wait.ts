import { Cluster, Command } from 'ioredis';
import { StoreUnavailableError } from '../../errors/store-unavailable.error.js';
import type { RedisClient, StoreLogger } from './redis-connections.js';
import { slotOfTag } from './redis-partitions.js';

/** `store.waitForReplicas`: how many replicas must hold each write, and how long to wait for them. */
export interface ReplicaWait {
  replicas: number;
  timeoutMs: number;
}

/**
 * Redis `WAIT` after each write, on the connection that wrote (WAIT counts the replicas that hold that
 * connection's writes so far). On a Cluster it goes to the node of the written key's slot: the same
 * node connection that carried the write.
 */
export class ReplicaWaiter {
  /** Whether a wait fell short since the last one that did not: logged once per outage. */
  private short = false;

  constructor(
    private readonly client: RedisClient,
    private readonly wait: ReplicaWait,
    private readonly logger: StoreLogger,
  ) {}

  /**
   * After a submit's write: null when enough replicas hold it, else the error to answer with (503). The
   * job is on the master then, but a failover may lose it.
   */
  async confirmSubmit(key: string): Promise<StoreUnavailableError | null> {
    const shortfall = await this.shortfall(key);
    if (shortfall === null) return null;
    const { replicas, timeoutMs } = this.wait;
    return new StoreUnavailableError('redis', shortfall, {
      outcomeUnknown: true,
      logged: true,
      detail:
        `The job was stored on the Redis master but not confirmed on ${replicas} replica(s) within ${timeoutMs} ms ` +
        '(store.waitForReplicas): it is lost if the master fails before its replicas catch up. Retry later; a submit ' +
        'retried with the same Idempotency-Key cannot create a second job.',
    });
  }

  /** After a worker's or an operator's write: a shortfall is only logged (once per outage). */
  async confirmWrite(key: string): Promise<void> {
    await this.shortfall(key);
  }

  /** Null when enough replicas hold the connection's writes, else why not; logs the outage's start and end. */
  private async shortfall(key: string): Promise<string | null> {
    const { replicas, timeoutMs } = this.wait;
    let reason: string | null;
    try {
      const acked = await this.waitOnNodeOf(key);
      reason =
        acked >= replicas ? null : `only ${acked} of ${replicas} replica(s) confirmed the write within ${timeoutMs} ms`;
    } catch (error) {
      reason = `WAIT for ${replicas} replica(s) failed: ${(error as Error).message}`;
    }
    if (reason === null && this.short) {
      this.short = false;
      this.logger.log(`Redis replicas confirm writes again (store.waitForReplicas: ${replicas}).`);
    } else if (reason !== null && !this.short) {
      this.short = true;
      this.logger.warn(
        `Redis writes are not confirmed by replicas: ${reason} (store.waitForReplicas). Submits are answered 503 and ` +
          'worker writes go on unconfirmed until they are; a failover meanwhile may lose them. Check the replicas ' +
          '(INFO replication on the master), or lower store.waitForReplicas.replicas.',
      );
    }
    return reason;
  }

  private async waitOnNodeOf(key: string): Promise<number> {
    const { replicas, timeoutMs } = this.wait;
    if (!(this.client instanceof Cluster)) return this.client.wait(replicas, timeoutMs);
    // WAIT names no key: routed by the slot of the written one.
    const command = new Command('wait', [replicas, timeoutMs], { replyEncoding: 'utf8' });
    return Number(await this.client.sendCommand(command, undefined, { slot: slotOfKey(key) }));
  }
}

/** The Cluster slot of a key: its {hash tag}'s when it has a non-empty one, else the whole key's. */
function slotOfKey(key: string): number {
  const open = key.indexOf('{');
  const close = open === -1 ? -1 : key.indexOf('}', open + 1);
  return slotOfTag(close > open + 1 ? key.slice(open + 1, close) : key);
}
