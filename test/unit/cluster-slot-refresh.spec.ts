import { jest } from '@jest/globals';
import type { Cluster } from 'ioredis';
import { createClusterCommandConnection, createSubscriberConnection } from '../../lib/store/redis/redis-connections.js';

/**
 * The store's Cluster connections refresh their slot map on a timer of the library's (ioredis' own
 * slotsRefreshInterval timer outlived quit()): refreshes only while ready, one timer however often
 * 'ready' fires, none left once the connection closed or ended. No Redis is reached: the connections
 * are lazy and their status is set by hand.
 */
describe('Cluster slot-map refresh timer', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  function connection(periodMs?: number): { cluster: Cluster; refreshes: () => number } {
    const cluster = createClusterCommandConnection(
      ['127.0.0.1:1'],
      periodMs === undefined ? {} : { slotsRefreshInterval: periodMs },
    );
    return { cluster, refreshes: spyOnRefresh(cluster) };
  }

  function spyOnRefresh(cluster: Cluster): () => number {
    const spy = jest.spyOn(cluster, 'refreshSlotsCache').mockImplementation((callback) => callback?.());
    return () => spy.mock.calls.length;
  }

  /** The refreshes counted once `ms` more have passed. */
  function after(ms: number, refreshes: () => number): number {
    jest.advanceTimersByTime(ms);
    return refreshes();
  }

  function setStatus(cluster: Cluster, status: string, event?: string): void {
    (cluster as unknown as { status: string }).status = status;
    if (event) cluster.emit(event);
  }

  it('hands ioredis no slotsRefreshInterval, and refreshes every 1000 ms by default while ready', () => {
    const { cluster, refreshes } = connection();
    expect(cluster.options.slotsRefreshInterval).toBe(0);
    setStatus(cluster, 'ready', 'ready');
    setStatus(cluster, 'ready', 'ready');
    expect(after(3000, refreshes)).toBe(3);
  });

  it('does not refresh while the connection is not ready, nor after it closed or ended until it is ready again', () => {
    const { cluster, refreshes } = connection(100);
    setStatus(cluster, 'ready', 'ready');
    setStatus(cluster, 'reconnecting');
    expect(after(300, refreshes)).toBe(0);
    // Closed: a status read as ready again without a 'ready' event does not bring refreshes back.
    setStatus(cluster, 'close', 'close');
    setStatus(cluster, 'ready');
    expect(after(300, refreshes)).toBe(0);
    setStatus(cluster, 'ready', 'ready');
    expect(after(300, refreshes)).toBe(3);
    setStatus(cluster, 'end', 'end');
    setStatus(cluster, 'ready');
    expect(after(300, refreshes)).toBe(3);
  });

  it('a period of 0 makes no periodic refresh', () => {
    const { cluster, refreshes } = connection(0);
    setStatus(cluster, 'ready', 'ready');
    expect(after(10_000, refreshes)).toBe(0);
  });

  it("the pub/sub duplicate refreshes on the command connection's period, through the library's timer", () => {
    const { cluster } = connection(250);
    const subscriber = createSubscriberConnection(cluster);
    expect(subscriber.options.slotsRefreshInterval).toBe(0);
    const refreshes = spyOnRefresh(subscriber);
    setStatus(subscriber, 'ready', 'ready');
    expect(after(1000, refreshes)).toBe(4);
    setStatus(subscriber, 'end', 'end');
    setStatus(subscriber, 'ready');
    expect(after(1000, refreshes)).toBe(4);
  });
});
