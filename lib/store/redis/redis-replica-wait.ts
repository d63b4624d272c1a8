import { Cluster, Command } from 'ioredis';
import { StoreUnavailableError } from '../../errors/store-unavailable.error.js';
import type { RedisClient, StoreLogger } from './redis-connections.js';
import { slotOfTag } from './redis-partitions.js';

/** `store.waitForReplicas`: how many replicas must hold each write, and how long to wait for them. */
export interface ReplicaWait {
  replicas: number;
  timeoutMs: number;
}

/** While a node's replicas fall short, one write a second tries them again (see ReplicaWaiter). */
const PROBE_INTERVAL_MS = 1000;

/**
 * Redis `WAIT` after each write, on the connection that wrote (WAIT counts the replicas that hold that
 * connection's writes so far). On a Cluster it goes to the node of the written key's slot: the same
 * node connection that carried the write.
 *
 * WAIT holds that connection until it answers, so a node whose replicas fall short (a replica down, or
 * a promoted replica that has none yet) would make every call to it wait `timeoutMs` in turn. While a
 * node falls short, the submits it would store are refused before they write (refusesSubmit) and its other
 * writes do not wait; one write a second waits again, and ends the outage when the replicas answer.
 */
export class ReplicaWaiter {
  /** Whether a wait fell short since the last one that did not: logged once per outage. */
  private short = false;
  /** Nodes (by address; one for a single Redis) that fell short at their last wait, and when last tried. */
  private readonly shortNodes = new Map<string, number>();

  constructor(
    private readonly client: RedisClient,
    private readonly wait: ReplicaWait,
    private readonly logger: StoreLogger,
  ) {}

  /**
   * Before a submit's write: an error (nothing written) while the node of `key` falls short of
   * replicas, except for one submit a second, which goes through and tries them again.
   */
  refusesSubmit(key: string): StoreUnavailableError | null {
    if (!this.skipsWait(this.nodeOf(slotOfKey(key)))) return null;
    const { replicas } = this.wait;
    return new StoreUnavailableError('redis', `fewer than ${replicas} replica(s) confirm writes`, {
      outcomeUnknown: false,
      logged: true,
      detail:
        `The Redis master has fewer than ${replicas} replica(s) confirming writes (store.waitForReplicas), so the ` +
        'job was not stored. Retry later.',
    });
  }

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
    if (this.skipsWait(this.nodeOf(slotOfKey(key)))) return;
    await this.shortfall(key);
  }

  /** Whether `node` fell short less than a second ago; else it is tried (again) now. */
  private skipsWait(node: string): boolean {
    const triedAt = this.shortNodes.get(node);
    if (triedAt === undefined) return false;
    const now = Date.now();
    if (now - triedAt < PROBE_INTERVAL_MS) return true;
    this.shortNodes.set(node, now);
    return false;
  }

  /** The node serving `slot` as the client's slot map says ('' for a single Redis). */
  private nodeOf(slot: number): string {
    return this.client instanceof Cluster ? (this.client.slots[slot]?.[0] ?? `slot ${slot}`) : '';
  }

  /** Null when enough replicas hold the connection's writes, else why not; logs the outage's start and end. */
  private async shortfall(key: string): Promise<string | null> {
    const { replicas, timeoutMs } = this.wait;
    const slot = slotOfKey(key);
    const node = this.nodeOf(slot);
    let reason: string | null;
    try {
      const acked = await this.waitOnNodeOf(slot);
      reason =
        acked >= replicas ? null : `only ${acked} of ${replicas} replica(s) confirmed the write within ${timeoutMs} ms`;
    } catch (error) {
      reason = `WAIT for ${replicas} replica(s) failed: ${(error as Error).message}`;
    }
    if (reason === null) this.shortNodes.delete(node);
    else if (!this.shortNodes.has(node)) this.shortNodes.set(node, Date.now());
    if (reason === null && this.short && this.shortNodes.size === 0) {
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

  private async waitOnNodeOf(slot: number): Promise<number> {
    const { replicas, timeoutMs } = this.wait;
    if (!(this.client instanceof Cluster)) return this.client.wait(replicas, timeoutMs);
    // WAIT names no key: routed by the slot of the written one.
    const command = new Command('wait', [replicas, timeoutMs], { replyEncoding: 'utf8' });
    return Number(await this.client.sendCommand(command, undefined, { slot }));
  }
}

/** The Cluster slot of a key: its {hash tag}'s when it has a non-empty one, else the whole key's. */
function slotOfKey(key: string): number {
  const open = key.indexOf('{');
  const close = open === -1 ? -1 : key.indexOf('}', open + 1);
  return slotOfTag(close > open + 1 ? key.slice(open + 1, close) : key);
}
