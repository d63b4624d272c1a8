import { MemoryJobStore } from '../../lib/store/memory/memory-job-store.js';
import type { Retention } from '../../lib/store/job-store.js';
import { newJob } from '../store-conformance/job-store.conformance.js';
import { RecordingLogger } from '../support/recording-logger.js';

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
    const [claimed] = await store.claimDueJobs({
      workerId: 'w',
      names: [input.name],
      limit: 1,
      leaseMs: 30_000,
      now,
      maxConcurrentJobs: null,
    });
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
    expect(
      (store as unknown as { table: { retained: { expiries: { size: number } } } }).table.retained.expiries.size,
    ).toBeLessThanOrEqual(2 * 10 + 1024 + 1);
  });

  it('refuses a submit as store-full when live jobs alone fill a cap, storing nothing and keeping every live job', async () => {
    store = new MemoryJobStore({ maxRetainedJobs: 2, maxRetainedBytes: 64 * 1024, logger: new RecordingLogger() });
    const live = [newJob(), newJob()];
    for (const job of live) await store.createJob(job, { ...options, now: 1 });

    const refused = await store.createJob(newJob(), { ...options, now: 2 });
    expect(refused).toEqual({ outcome: 'store-full', reason: expect.stringContaining('store.maxRetainedJobs') });
    const tooBig = new MemoryJobStore({ maxRetainedBytes: 64 * 1024, logger: new RecordingLogger() });
    const bigRefusal = await tooBig.createJob(newJob({ payload: { blob: 'x'.repeat(100 * 1024) } }), {
      ...options,
      now: 2,
    });
    expect(bigRefusal).toEqual({ outcome: 'store-full', reason: expect.stringContaining('store.maxRetainedBytes') });
    await tooBig.close();

    expect(retained(store).retainedJobs).toBe(2);
    for (const job of live) expect((await store.getJob(job.id))!.status).toBe('Queued');
  });

  it('refuses a submit that cannot fit even with every finished job evicted, and evicts none of them', async () => {
    store = new MemoryJobStore({ maxRetainedBytes: 20_000, logger: new RecordingLogger() });
    const finished = [
      await runToCompletion('a', t0 + 1),
      await runToCompletion('b', t0 + 2),
      await runToCompletion('c', t0 + 3),
    ];

    const tooBig = await store.createJob(newJob({ payload: { blob: 'x'.repeat(25_000) } }), {
      ...options,
      now: t0 + 4,
    });
    expect(tooBig.outcome).toBe('store-full');
    expect(retained(store).retainedJobs).toBe(3);
    for (const id of finished) expect((await store.getJob(id))!.status).toBe('Completed');
  });

  it('refuses, evicting no finished job, while live jobs fill maxRetainedBytes', async () => {
    store = new MemoryJobStore({ maxRetainedBytes: 12 * 1024, logger: new RecordingLogger() });
    const finished = await runToCompletion('a', t0 + 1);
    // Two live jobs of ~5 KiB: with the finished one, the store is at its byte cap.
    for (let i = 0; i < 2; i++)
      await store.createJob(newJob({ payload: { blob: 'x'.repeat(4000) } }), { ...options, now: t0 + 2 });

    const refused = await store.createJob(newJob({ payload: { blob: 'x'.repeat(4000) } }), { ...options, now: t0 + 3 });
    expect(refused.outcome).toBe('store-full');
    expect((await store.getJob(finished))!.status).toBe('Completed');
  });

  it('keeps the job it finishes, with its result, when its result alone goes over maxRetainedBytes', async () => {
    store = new MemoryJobStore({ maxRetainedBytes: 8 * 1024 });
    const input = newJob();
    await store.createJob(input, { ...options, now: t0 });
    const [claimed] = await store.claimDueJobs({
      workerId: 'w',
      names: [input.name],
      limit: 1,
      leaseMs: 30_000,
      now: t0,
      maxConcurrentJobs: null,
    });
    const result = { blob: 'r'.repeat(10_000) };

    expect(await store.completeJob(claimed!.lease, result, { now: t0, retention })).toBe('completed');
    expect(await store.getJob(input.id)).toMatchObject({ status: 'Completed', result });
    // Evicted by the next submit that needs the room, as the oldest finished job.
    expect((await store.createJob(newJob(), { ...options, now: t0 + 1 })).outcome).toBe('created');
    expect(await store.getJob(input.id)).toBeNull();
  });

  it('logs a full store once per outage with its counts and option, and logs when it accepts again', async () => {
    const logger = new RecordingLogger();
    store = new MemoryJobStore({ maxRetainedJobs: 1, logger });
    const live = newJob();
    await store.createJob(live, { ...options, now: t0 });
    for (let i = 0; i < 3; i++)
      expect((await store.createJob(newJob(), { ...options, now: t0 })).outcome).toBe('store-full');
    expect(logger.messages('warn')).toEqual([
      expect.stringMatching(/^The memory job store is full: it holds 1 live .* store\.maxRetainedJobs \(1\)/),
    ]);

    await store.cancelJob(live.id, { now: t0, retention });
    expect((await store.createJob(newJob(), { ...options, now: t0 })).outcome).toBe('created');
    expect(logger.messages('log')).toEqual([
      'The memory job store accepts submissions again: it has room below its caps.',
    ]);
    expect(logger.messages('warn')).toHaveLength(1);
  });

  it('frees the idempotency key of an evicted job: a repeat creates a new job (docs/storage.md)', async () => {
    store = new MemoryJobStore({ maxRetainedJobs: 1 });
    const first = newJob({ idempotencyKey: 'order-1' });
    await store.createJob(first, { ...options, now: t0 });
    await store.cancelJob(first.id, { now: t0, retention });
    const other = newJob();
    expect((await store.createJob(other, { ...options, now: t0 + 1 })).outcome).toBe('created');
    expect(await store.getJob(first.id)).toBeNull();
    await store.cancelJob(other.id, { now: t0 + 1, retention });

    const repeat = newJob({ idempotencyKey: 'order-1' });
    const answer = await store.createJob(repeat, { ...options, now: t0 + 2 });
    expect(answer).toMatchObject({ outcome: 'created', job: { id: repeat.id } });
  });

  it('counts a completed job without its payload when dropPayloadOnFinish drops it', async () => {
    store = new MemoryJobStore();
    const input = newJob({ payload: { blob: 'x'.repeat(MiB) } });
    await store.createJob(input, { ...options, now: 1 });
    expect(retained(store).retainedBytes).toBeGreaterThan(MiB);
    const [claimed] = await store.claimDueJobs({
      workerId: 'w',
      names: [input.name],
      limit: 1,
      leaseMs: 30_000,
      now: 1,
      maxConcurrentJobs: null,
    });
    await store.completeJob(claimed!.lease, null, { now: 2, retention: { ...retention, dropPayloadOnFinish: true } });
    expect(retained(store).retainedBytes).toBeLessThan(4096);
  });
});

describe('memory store listings', () => {
  const store = new MemoryJobStore();
  const now = Date.now();
  const options = { now, maximumQueueSize: 1_000_000 };

  afterAll(() => store.close());

  it('pages every finished job once after thousands of transitions, and refuses a cursor it did not issue', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 1500; i++) {
      const input = newJob({ fingerprint: '' });
      ids.push(input.id);
      await store.createJob(input, options);
      const [claimed] = await store.claimDueJobs({
        workerId: 'w',
        names: [input.name],
        limit: 1,
        leaseMs: 30_000,
        now,
        maxConcurrentJobs: null,
      });
      await store.completeJob(claimed!.lease, null, { now: now + i, retention });
    }
    const listed: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await store.listJobs({ status: 'Completed', limit: 400, cursor });
      listed.push(...page.jobs.map((job) => job.id));
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect(listed).toEqual([...ids].reverse());
    expect((await store.listJobs({ status: 'Queued', limit: 10 })).jobs).toEqual([]);
    await expect(store.listJobs({ status: 'Completed', limit: 10, cursor: 'page-2' })).rejects.toThrow(
      "cursor 'page-2' is not one this store returned; pass the nextCursor of the page before",
    );
  });
});
