import type { RedisClient } from './redis-connections.js';
import type { StoreEvent, StoreEventListener, StoreEventType } from '../job-store.js';
import type { StoreLogger } from './redis-connections.js';

/** How long a store call waits for a SSUBSCRIBE under way before it goes ahead anyway. */
const SUBSCRIBE_WAIT_MS = 1000;
/** A SSUBSCRIBE that failed is sent again this much later, for as long as a listener wants the channel. */
export const RESUBSCRIBE_DELAY_MS = 1000;

const ALL_TYPES: readonly StoreEventType[] = ['job-available', 'cancel-requested', 'job-finished'];

/** The message of a job of `name` due now in partition `partition`, as the store publishes it after a submit. */
export function jobAvailableMessage(name: string, partition: number): string {
  return JSON.stringify({ type: 'job-available', name, partition });
}

/** Parsed messages kept for reuse: the same few (job-available per name and partition) come again and again. */
const PARSED_CACHE_SIZE = 256;

/** Told of the partition of each job-available event (the store's claim targeting). */
export type PartitionListener = (partition: number, dueAt: number | undefined) => void;

/** The shard channel of each event type in one partition (RedisKeys.events, RedisKeys.finished). */
export type PartitionChannels = Readonly<Record<StoreEventType, string>>;

/**
 * Relays the events the scripts SPUBLISH, from every process, to this process's listeners. Each
 * partition has a shard channel per event type (includes/publish.lua); a channel is subscribed while
 * at least one listener wants one of its types, so a worker never hears of the jobs finished
 * elsewhere. One SSUBSCRIBE per channel: channels of different slots may not share one.
 */
export class RedisEventRelay {
  private readonly listeners = new Map<StoreEventListener, ReadonlySet<StoreEventType>>();
  /** Listeners per channel, while subscribed. */
  private readonly audience = new Map<string, number>();
  /**
   * The SSUBSCRIBEs sent and not yet confirmed. On a Cluster they go to different nodes, which confirm
   * in any order: the store waits for all of them (not for SUNSUBSCRIBEs: nobody waits on those).
   */
  private readonly channelChanges = new Set<Promise<void>>();
  /** Channels whose SSUBSCRIBE failed, until one goes through; each has a retry timer. */
  private readonly failing = new Map<string, NodeJS.Timeout>();
  private closed = false;
  /** Message text -> its event and partition, for the messages that repeat. */
  private readonly parsed = new Map<string, ParsedEvent | null>();
  /** Told of the partition of every job-available event heard. */
  onPartition: PartitionListener | null = null;

  constructor(
    private readonly subscriber: RedisClient,
    private readonly partitions: readonly PartitionChannels[],
    private readonly logger: StoreLogger,
  ) {
    const known = new Set(partitions.flatMap((channels) => Object.values(channels)));
    subscriber.on('smessage', (from: string, message: string) => {
      if (known.has(from)) this.dispatch(message);
    });
  }

  add(listener: StoreEventListener, types: readonly StoreEventType[] = ALL_TYPES): () => void {
    if (this.listeners.has(listener)) return () => undefined;
    const wanted = new Set(types);
    this.listeners.set(listener, wanted);
    const channels = this.channelsOf(wanted);
    for (const channel of channels) {
      const count = (this.audience.get(channel) ?? 0) + 1;
      this.audience.set(channel, count);
      if (count === 1) this.subscribe(channel);
    }
    return () => {
      if (this.listeners.get(listener) !== wanted) return;
      this.listeners.delete(listener);
      for (const channel of channels) {
        const count = (this.audience.get(channel) ?? 1) - 1;
        if (count > 0) {
          this.audience.set(channel, count);
        } else {
          this.audience.delete(channel);
          this.unsubscribe(channel);
        }
      }
    };
  }

  /**
   * Store calls wait for the SSUBSCRIBEs under way first, so that a listener added before a call hears
   * that call's event, as with the memory store. A no-op once subscribed. When Redis does not confirm
   * in time (an outage), later calls stop waiting for them.
   */
  settled(): Promise<void> | null {
    // Null once subscribed, so that callers need not wait a turn for nothing.
    if (this.channelChanges.size === 0) return null;
    return this.waitFor([...this.channelChanges]);
  }

  private async waitFor(channelChanges: Promise<void>[]): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const giveUp = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        for (const change of channelChanges) this.channelChanges.delete(change);
        resolve();
      }, SUBSCRIBE_WAIT_MS);
    });
    await Promise.race([Promise.all(channelChanges), giveUp]);
    clearTimeout(timer);
  }

  close(): void {
    this.closed = true;
    this.listeners.clear();
    this.audience.clear();
    for (const timer of this.failing.values()) clearTimeout(timer);
    this.failing.clear();
  }

  private channelsOf(types: ReadonlySet<StoreEventType>): string[] {
    return [...new Set(this.partitions.flatMap((channels) => [...types].map((type) => channels[type])))];
  }

  /**
   * SSUBSCRIBE, which store calls wait for (settled). A failure (a Cluster that has no subscriber for
   * the slot yet, a node that fails under the command) is logged once and the command sent again
   * RESUBSCRIBE_DELAY_MS later while a listener wants the channel: until then this process hears of
   * that partition's jobs only at its polls.
   */
  private subscribe(channel: string): void {
    const tracked: Promise<void> = this.subscriber.ssubscribe(channel).then(
      () => {
        if (!this.failing.has(channel)) return;
        clearTimeout(this.failing.get(channel));
        this.failing.delete(channel);
        this.logger.log(`Subscribed to Redis channel ${channel} again.`);
      },
      (error: Error) => {
        if (this.closed || !this.audience.has(channel)) return;
        if (!this.failing.has(channel)) {
          this.logger.warn(
            `Could not subscribe to Redis channel ${channel}: ${error.message}. Trying again every ${RESUBSCRIBE_DELAY_MS} ms; meanwhile this process hears of that partition's jobs only at its polls (worker.pollingIntervalMs).`,
          );
        }
        clearTimeout(this.failing.get(channel));
        const retry = setTimeout(() => {
          if (!this.closed && this.audience.has(channel)) this.subscribe(channel);
          else this.failing.delete(channel);
        }, RESUBSCRIBE_DELAY_MS);
        retry.unref();
        this.failing.set(channel, retry);
      },
    );
    this.channelChanges.add(tracked);
    void tracked.then(() => this.channelChanges.delete(tracked));
  }

  /** SUNSUBSCRIBE; nothing waits for it: a message that still comes finds no listener. */
  private unsubscribe(channel: string): void {
    this.subscriber
      .sunsubscribe(channel)
      .catch((error: Error) =>
        this.logger.warn(`Could not unsubscribe from Redis channel ${channel}: ${error.message}`),
      );
  }

  private dispatch(message: string): void {
    // Most messages were seen before: this is on the way from a submit to a waiting worker's claim (~12
    // µs of JSON.parse in a worker that was idle).
    let parsed = this.parsed.get(message);
    if (parsed === undefined) {
      parsed = parseEvent(message);
      if (parsed?.event.type === 'job-available' && parsed.event.dueAt === undefined) {
        if (this.parsed.size >= PARSED_CACHE_SIZE) this.parsed.clear();
        this.parsed.set(message, parsed);
      }
    }
    if (!parsed) return;
    const { event, partition } = parsed;
    if (partition !== undefined && event.type === 'job-available') this.onPartition?.(partition, event.dueAt);
    for (const [listener, types] of [...this.listeners]) {
      if (!types.has(event.type)) continue;
      try {
        listener(event);
      } catch {
        // A listener's failure is its own; the store's state is already consistent.
      }
    }
  }
}

interface ParsedEvent {
  event: StoreEvent;
  /** The partition of a job-available event. */
  partition?: number;
}

/** The events the store publishes; anything else on the channels (a newer version's event) is skipped. */
function parseEvent(message: string): ParsedEvent | null {
  let event: unknown;
  try {
    event = JSON.parse(message);
  } catch {
    return null;
  }
  if (typeof event !== 'object' || event === null) return null;
  const { type, jobId, dueAt, name, partition } = event as Record<string, unknown>;
  switch (type) {
    case 'job-available': {
      const available: StoreEvent = Object.freeze({
        type,
        ...(typeof name === 'string' && { name }),
        ...(typeof dueAt === 'number' && { dueAt }),
      });
      return { event: available, ...(typeof partition === 'number' && { partition }) };
    }
    case 'cancel-requested':
    case 'job-finished':
      return typeof jobId === 'string' ? { event: { type, jobId } } : null;
    default:
      return null;
  }
}
