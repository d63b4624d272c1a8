import type { Redis } from 'ioredis';
import type { StoreEvent, StoreEventListener } from '../job-store.js';
import type { StoreLogger } from './redis-connections.js';

/** How long a store call waits for a SUBSCRIBE under way before it goes ahead anyway. */
const SUBSCRIBE_WAIT_MS = 1000;

/**
 * Relays the events the scripts PUBLISH on the store's channel, from every process, to this process's
 * listeners. The channel is subscribed on the first listener and left with the last one.
 */
export class RedisEventRelay {
  private readonly listeners = new Set<StoreEventListener>();
  /** The SUBSCRIBE or UNSUBSCRIBE last sent, until Redis confirms it. */
  private channelChange: Promise<void> | null = null;

  constructor(
    private readonly subscriber: Redis,
    private readonly channel: string,
    private readonly logger: StoreLogger,
  ) {
    subscriber.on('message', (from: string, message: string) => {
      if (from === this.channel) this.dispatch(message);
    });
  }

  add(listener: StoreEventListener): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.track(this.subscriber.subscribe(this.channel), 'subscribe to');
    return () => {
      if (this.listeners.delete(listener) && this.listeners.size === 0) {
        this.track(this.subscriber.unsubscribe(this.channel), 'unsubscribe from');
      }
    };
  }

  /**
   * Store calls wait for a SUBSCRIBE under way first, so that a listener added before a call hears
   * that call's event, as with the memory store. A no-op once subscribed. When Redis does not confirm
   * in time (an outage), later calls stop waiting for it.
   */
  async settled(): Promise<void> {
    const channelChange = this.channelChange;
    if (!channelChange) return;
    let timer: NodeJS.Timeout | undefined;
    const giveUp = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (this.channelChange === channelChange) this.channelChange = null;
        resolve();
      }, SUBSCRIBE_WAIT_MS);
    });
    await Promise.race([channelChange, giveUp]);
    clearTimeout(timer);
  }

  close(): void {
    this.listeners.clear();
  }

  private track(command: Promise<unknown>, action: string): void {
    const tracked: Promise<void> = command.then(
      () => undefined,
      (error: Error) => this.logger.warn(`Could not ${action} Redis channel ${this.channel}: ${error.message}`),
    );
    this.channelChange = tracked;
    void tracked.then(() => {
      if (this.channelChange === tracked) this.channelChange = null;
    });
  }

  private dispatch(message: string): void {
    const event = parseEvent(message);
    if (!event) return;
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch {
        // A listener's failure is its own; the store's state is already consistent.
      }
    }
  }
}

/** The events common.lua publishes; anything else on the channel (a newer version's event) is skipped. */
function parseEvent(message: string): StoreEvent | null {
  let event: unknown;
  try {
    event = JSON.parse(message);
  } catch {
    return null;
  }
  if (typeof event !== 'object' || event === null) return null;
  const { type, jobId, dueAt } = event as Record<string, unknown>;
  switch (type) {
    case 'job-available':
      return typeof dueAt === 'number' ? { type, dueAt } : { type };
    case 'cancel-requested':
    case 'job-finished':
      return typeof jobId === 'string' ? { type, jobId } : null;
    default:
      return null;
  }
}
