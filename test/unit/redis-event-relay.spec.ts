import { EventEmitter } from 'node:events';
import type { RedisClient } from '../../lib/store/redis/redis-connections.js';
import { RedisEventRelay, RESUBSCRIBE_DELAY_MS } from '../../lib/store/redis/redis-event-relay.js';
import { RecordingLogger } from '../support/recording-logger.js';

/**
 * The relay's own bookkeeping, against a subscriber whose SSUBSCRIBE and SUNSUBSCRIBE answer when the
 * test says (a real Redis answers at once, or never while it is down: neither shows the order). The
 * store's events over a real Redis and a real Cluster are covered by the store conformance suites.
 */
class ScriptedSubscriber extends EventEmitter {
  readonly sent: string[] = [];
  private readonly answers: { command: string; resolve: () => void; reject: (error: Error) => void }[] = [];

  ssubscribe(channel: string): Promise<unknown> {
    return this.command(`ssubscribe ${channel}`);
  }

  sunsubscribe(channel: string): Promise<unknown> {
    return this.command(`sunsubscribe ${channel}`);
  }

  /** Answers the oldest unanswered command, with success or `error`. */
  answer(error?: Error): string {
    const next = this.answers.shift()!;
    if (error) next.reject(error);
    else next.resolve();
    return next.command;
  }

  private command(command: string): Promise<unknown> {
    this.sent.push(command);
    return new Promise<void>((resolve, reject) => this.answers.push({ command, resolve, reject }));
  }
}

const channels = [{ 'job-available': 'P0:events', 'cancel-requested': 'P0:events', 'job-finished': 'P0:finished' }];
const turn = () => new Promise((resolve) => setImmediate(resolve));

function relayOn(subscriber: ScriptedSubscriber, logger = new RecordingLogger()) {
  return new RedisEventRelay(subscriber as unknown as RedisClient, channels, logger);
}

describe('RedisEventRelay', () => {
  it('makes store calls wait for an SSUBSCRIBE under way, and not for a SUNSUBSCRIBE', async () => {
    const subscriber = new ScriptedSubscriber();
    const relay = relayOn(subscriber);
    const remove = relay.add(() => undefined, ['job-finished']);
    const waiting = relay.settled();
    expect(waiting).not.toBeNull();
    let settled = false;
    void waiting!.then(() => (settled = true));
    await turn();
    expect(settled).toBe(false);
    expect(subscriber.answer()).toBe('ssubscribe P0:finished');
    await waiting;
    expect(relay.settled()).toBeNull();

    remove();
    expect(subscriber.sent).toEqual(['ssubscribe P0:finished', 'sunsubscribe P0:finished']);
    // The SUNSUBSCRIBE is unanswered: calls go ahead at once.
    expect(relay.settled()).toBeNull();
    relay.close();
  });

  it('sends a refused SSUBSCRIBE again while a listener wants the channel, warns once and says when it went through', async () => {
    const subscriber = new ScriptedSubscriber();
    const logger = new RecordingLogger();
    const relay = relayOn(subscriber, logger);
    relay.add(() => undefined, ['job-finished']);
    subscriber.answer(new Error('No sharded subscriber for slot: 42'));
    await turn();
    await new Promise((resolve) => setTimeout(resolve, RESUBSCRIBE_DELAY_MS + 50));
    expect(subscriber.sent).toEqual(['ssubscribe P0:finished', 'ssubscribe P0:finished']);
    subscriber.answer(new Error('No sharded subscriber for slot: 42'));
    await new Promise((resolve) => setTimeout(resolve, RESUBSCRIBE_DELAY_MS + 50));
    expect(subscriber.sent).toHaveLength(3);
    subscriber.answer();
    await turn();
    expect(logger.messages('warn')).toEqual([
      expect.stringContaining('Could not subscribe to Redis channel P0:finished: No sharded subscriber for slot: 42'),
    ]);
    expect(logger.messages('log')).toEqual(['Subscribed to Redis channel P0:finished again.']);
    relay.close();
  });

  it('stops sending a refused SSUBSCRIBE once no listener wants the channel', async () => {
    const subscriber = new ScriptedSubscriber();
    const relay = relayOn(subscriber);
    const remove = relay.add(() => undefined, ['job-finished']);
    subscriber.answer(new Error('Connection is closed.'));
    await turn();
    remove();
    await new Promise((resolve) => setTimeout(resolve, RESUBSCRIBE_DELAY_MS + 50));
    expect(subscriber.sent).toEqual(['ssubscribe P0:finished', 'sunsubscribe P0:finished']);
    relay.close();
  });
});
