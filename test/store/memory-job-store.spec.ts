import { MemoryJobStore } from '../../lib/store/memory/memory-job-store.js';
import type { Retention } from '../../lib/store/job-store.js';
import { newJob } from '../store-conformance/job-store.conformance.js';

const retention: Retention = { completedTtlMs: 86_400_000, failedTtlMs: 604_800_000 };
const MiB = 1024 * 1024;

/** What the store counts against its caps (its diagnostics, as the health indicator shows them). */
function retained(store: MemoryJobStore): { retainedJobs: number; retainedBytes: number } {
  return store.diagnostics() as { retainedJobs: number; retainedBytes: number };
}

describe('memory store caps (maxRetainedJobs, maxRetainedBytes)', () => {
  let store: MemoryJobStore;
  const options = { now: 0, maximumQueueSize: 1_000_000 };
  // Real times: getJob compares retention with the clock.
  const t0 = Date.now();

  afterEach(() => store.close());

  /** Submits a job, claims and completes it: one finished job. */
  async function runToCompletion(payload: string, now: number): Promise<string> {
    // No fingerprint: hashing 1 MB per job would be most of this test's time.
    const input = newJob({ payload: { blob: payload }, fingerprint: '' });
    expect((await store.createJob(input, { ...options, now })).outcome).toBe('created');
    const [claimed] = await store.claimDueJobs({ workerId: 'w', limit: 1, leaseMs: 30_000, now, maxConcurrentJobs: null });
    expect(await store.completeJob(claimed!.lease, { ok: true }, { now, retention })).toBe('completed');
    return input.id;
  }

  it('keeps 300 finished 1 MB jobs within the default 256 MiB, evicting the oldest first', async () => {
    store = new MemoryJobStore();
    const blob = 'x'.repeat(MiB);
    const ids: string[] = [];
    for (let i = 0; i < 300; i++) ids.push(await runToCompletion(blob, t0 + i));

    const { retainedJobs, retainedBytes } = retained(store);
    expect(retainedBytes).toBeLessThanOrEqual(256 * MiB);
    expect(retainedJobs).toBeLessThan(300);
    // The newest finished jobs are the ones kept.
    const kept = ids.slice(-retainedJobs);
    for (const id of kept) expect((await store.getJob(id))!.status).toBe('Completed');
    expect(await store.getJob(ids[0]!)).toBeNull();
    expect(await store.getJob(ids[300 - retainedJobs - 1]!)).toBeNull();
    expect((await store.stats(t0 + 300)).counts.Completed).toBe(retainedJobs);
  });

  it('evicts the oldest finished job beyond maxRetainedJobs and never a live one', async () => {
    store = new MemoryJobStore({ maxRetainedJobs: 3 });
    const finished = [await runToCompletion('a', t0 + 1), await runToCompletion('b', t0 + 2)];
    const live = newJob();
    await store.createJob(live, { ...options, now: t0 + 3 });
    const next = newJob();
    expect((await store.createJob(next, { ...options, now: t0 + 4 })).outcome).toBe('created');
    expect(await store.getJob(finished[0]!)).toBeNull();
    expect((await store.getJob(finished[1]!))!.status).toBe('Completed');
    expect((await store.getJob(live.id))!.status).toBe('Queued');
  });

  it('keeps its expiry entries bounded by the jobs it keeps, however many it evicted', async () => {
    store = new MemoryJobStore({ maxRetainedJobs: 10 });
    for (let i = 0; i < 5000; i++) await runToCompletion('a', t0 + i);
    expect(retained(store).retainedJobs).toBe(10);
    // Not visible through the API: the heap of retention deadlines, one entry per finish unless cleaned.
    expect((store as unknown as { table: { retained: { expiries: { size: number } } } }).table.retained.expiries.size).toBeLessThanOrEqual(2 * 10 + 1024 + 1);
  });

  it('refuses a submit as store-full when live jobs alone fill a cap, storing nothing and keeping every live job', async () => {
    store = new MemoryJobStore({ maxRetainedJobs: 2, maxRetainedBytes: 64 * 1024 });
    const live = [newJob(), newJob()];
    for (const job of live) await store.createJob(job, { ...options, now: 1 });

    const refused = await store.createJob(newJob(), { ...options, now: 2 });
    expect(refused).toEqual({ outcome: 'store-full', reason: expect.stringContaining('store.maxRetainedJobs') });
    const tooBig = new MemoryJobStore({ maxRetainedBytes: 64 * 1024 });
    const bigRefusal = await tooBig.createJob(newJob({ payload: { blob: 'x'.repeat(100 * 1024) } }), { ...options, now: 2 });
    expect(bigRefusal).toEqual({ outcome: 'store-full', reason: expect.stringContaining('store.maxRetainedBytes') });
    await tooBig.close();

    expect(retained(store).retainedJobs).toBe(2);
    for (const job of live) expect((await store.getJob(job.id))!.status).toBe('Queued');
  });

  it('counts a completed job without its payload when dropPayloadOnFinish drops it', async () => {
    store = new MemoryJobStore();
    const input = newJob({ payload: { blob: 'x'.repeat(MiB) } });
    await store.createJob(input, { ...options, now: 1 });
    expect(retained(store).retainedBytes).toBeGreaterThan(MiB);
    const [claimed] = await store.claimDueJobs({ workerId: 'w', limit: 1, leaseMs: 30_000, now: 1, maxConcurrentJobs: null });
    await store.completeJob(claimed!.lease, null, { now: 2, retention: { ...retention, dropPayloadOnFinish: true } });
    expect(retained(store).retainedBytes).toBeLessThan(4096);
  });
});
