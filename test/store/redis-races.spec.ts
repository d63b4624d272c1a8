import { Redis } from 'ioredis';
import type { Retention } from '../../lib/store/job-store.js';
import { RedisJobStore } from '../../lib/store/redis/redis-job-store.js';
import { createStored, newJob } from '../store-conformance/job-store.conformance.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { RedisServer } from '../support/redis-server.js';

/**
 * The two-step operations read first (candidates, a job's name) and then run a script with those keys
 * declared; whatever changed in between, the script checks again. Each case makes the change happen
 * exactly in between: the store runs on a client handed in, whose read calls the change once it has
 * answered.
 */
const retention: Retention = { completedTtlMs: 60_000, failedTtlMs: 60_000 };
const claimOptions = (now: number, leaseMs: number) => ({
  workerId: 'worker-a',
  names: ['Process'],
  limit: 1,
  leaseMs,
  now,
  maxConcurrentJobs: null,
});

let server: RedisServer;
let prefixes = 0;
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  server = await RedisServer.start();
});

afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

afterAll(async () => {
  await server?.dispose();
});

/**
 * A store on `partitions` whose client runs `between` once, right after the first `command` that found
 * something answered (with several partitions, reads of the other partitions find nothing).
 */
async function storeWithRaceAfter(
  command: 'zrangebyscore' | 'zrange' | 'hmget',
  partitions: number,
): Promise<{ store: RedisJobStore; race: (between: () => Promise<unknown>) => void }> {
  const client = new Redis(server.url, { lazyConnect: true });
  const store = new RedisJobStore({
    client,
    keyPrefix: `{ae-race-${++prefixes}}`,
    partitions,
    logger: new RecordingLogger(),
  });
  cleanup.push(
    () => client.quit(),
    () => store.close(),
  );
  await store.init();
  let pending: (() => Promise<unknown>) | null = null;
  const original = (client[command] as (...args: unknown[]) => Promise<unknown>).bind(client);
  (client as unknown as Record<string, unknown>)[command] = async (...args: unknown[]) => {
    const reply = await original(...args);
    if (Array.isArray(reply) && !reply.some((value) => value !== null)) return reply;
    const between = pending;
    pending = null;
    if (between) await between();
    return reply;
  };
  return { store, race: (between) => (pending = between) };
}

describe.each([1, 4])('Redis store with %i partition(s), changes between the read and the script', (partitions) => {
  it('recovery leaves a job whose lease was renewed after it was read as expired', async () => {
    const { store, race } = await storeWithRaceAfter('zrangebyscore', partitions);
    const job = newJob();
    await createStored(store, job, { now: Date.now(), maximumQueueSize: 100 });
    const now = Date.now();
    const [claimed] = await store.claimDueJobs(claimOptions(now, 1000));
    race(() => store.renewLeases([claimed!.lease], { now: now + 1000, leaseMs: 30_000 }));
    const report = await store.recoverJobs({
      now: now + 1000,
      maxInProgressMs: 3_600_000,
      maxRecoveries: 3,
      lockMs: 1,
      retention,
    });
    expect(report).toEqual({ requeued: [], exhausted: [], canceled: [], removedEntries: 0 });
    expect(await store.getJob(job.id)).toMatchObject({ status: 'InProgress', recoveryCount: 0 });
    expect(await store.completeJob(claimed!.lease, 'done', { now: now + 1001, retention })).toBe('completed');
  });

  it('purge keeps a job that an operator retried after it was read as finished', async () => {
    const { store, race } = await storeWithRaceAfter('zrange', partitions);
    const job = newJob();
    await createStored(store, job, { now: Date.now(), maximumQueueSize: 100 });
    const now = Date.now();
    const [claimed] = await store.claimDueJobs(claimOptions(now, 30_000));
    await store.failJob(claimed!.lease, { code: 'E', message: 'x' }, { now, retryAt: null, retention });
    race(() => store.retryJob(job.id, { now: now + 1 }));
    expect(await store.purgeJobs({ status: 'Failed', finishedBefore: now + 10, limit: 10, now: now + 10 })).toEqual([]);
    expect(await store.getJob(job.id)).toMatchObject({ status: 'Queued' });
  });

  it('cancel reads again when the job was canceled and submitted anew under another name meanwhile', async () => {
    const { store, race } = await storeWithRaceAfter('hmget', partitions);
    const now = Date.now();
    const job = newJob({ id: `race-${partitions}`, name: 'Process' });
    await store.createJob(job, { now, maximumQueueSize: 100 });
    // The job goes, and one of another name comes under its id: the cancel read the first one's name.
    race(async () => {
      await store.cancelJob(job.id, { now, retention: { completedTtlMs: 1, failedTtlMs: 1 } });
      await new Promise((resolve) => setTimeout(resolve, 5));
      await store.createJob(newJob({ id: job.id, name: 'Other' }), { now, maximumQueueSize: 100 });
    });
    const result = await store.cancelJob(job.id, { now: now + 1, retention });
    expect(result).toMatchObject({ outcome: 'canceled', job: { id: job.id, name: 'Other', status: 'Canceled' } });
    const stats = await store.stats(now + 1);
    expect(stats.counts).toMatchObject({ Queued: 0, Canceled: 1 });
    // Its queue entry went with it: the script ran with the keys of its name.
    expect(stats.names.Other?.waiting ?? 0).toBe(0);
  });
});
