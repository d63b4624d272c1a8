import { jest } from '@jest/globals';
import { MemoryJobStore } from '../../lib/store/memory/memory-job-store.js';
import { JobFinishedWaiters } from '../../lib/store/job-finished-waiters.js';
import { newJob } from '../store-conformance/job-store.conformance.js';

const retention = { completedTtlMs: 60_000, failedTtlMs: 60_000 };

describe('JobFinishedWaiters', () => {
  let store: MemoryJobStore;
  let waiters: JobFinishedWaiters;
  let subscribe: jest.SpiedFunction<MemoryJobStore['subscribe']>;
  let unsubscribed: number;

  beforeEach(async () => {
    store = new MemoryJobStore();
    await store.init();
    unsubscribed = 0;
    const original = store.subscribe.bind(store);
    subscribe = jest.spyOn(store, 'subscribe').mockImplementation((listener) => {
      const stop = original(listener);
      return () => {
        unsubscribed++;
        stop();
      };
    });
    waiters = new JobFinishedWaiters(store);
  });
  afterEach(() => store.close());

  async function queued() {
    const job = newJob();
    await store.createJob(job, { now: Date.now(), maximumQueueSize: 100 });
    return job.id;
  }

  it('shares one store subscription among all waiters, and drops it with the last', async () => {
    const [a, b] = [await queued(), await queued()];
    const first = waiters.watch(a);
    const second = waiters.watch(b);
    const third = waiters.watch(a);
    expect(subscribe).toHaveBeenCalledTimes(1);
    expect(waiters.size).toBe(3);
    first.stop();
    second.stop();
    expect(unsubscribed).toBe(0);
    third.stop();
    third.stop();
    expect(unsubscribed).toBe(1);
    expect(waiters.size).toBe(0);
  });

  it("wakes only the finished job's waiters", async () => {
    const [a, b] = [await queued(), await queued()];
    const onA = waiters.watch(a);
    const onB = waiters.watch(b);
    const woke: string[] = [];
    const waits = [onA.until(5_000).then(() => woke.push('a')), onB.until(200).then(() => woke.push('b'))];
    await store.cancelJob(a, { now: Date.now(), retention });
    await waits[0];
    expect(woke).toEqual(['a']);
    await waits[1];
    expect(woke).toEqual(['a', 'b']);
    onA.stop();
    onB.stop();
  });

  it('remembers a finish that came before until() was called', async () => {
    const id = await queued();
    const watch = waiters.watch(id);
    await store.cancelJob(id, { now: Date.now(), retention });
    const started = Date.now();
    await watch.until(5_000);
    expect(Date.now() - started).toBeLessThan(100);
    watch.stop();
  });

  it('ends a wait when its signal aborts or the waiters close, and later waits do not wait', async () => {
    const id = await queued();
    const aborted = new AbortController();
    const byAbort = waiters.watch(id);
    const byClose = waiters.watch(id);
    const started = Date.now();
    const waits = [byAbort.until(5_000, aborted.signal), byClose.until(5_000)];
    aborted.abort();
    await waits[0];
    waiters.close();
    await waits[1];
    const later = waiters.watch(id);
    await later.until(5_000);
    expect(Date.now() - started).toBeLessThan(100);
    for (const watch of [byAbort, byClose, later]) watch.stop();
    expect(waiters.size).toBe(0);
  });
});
