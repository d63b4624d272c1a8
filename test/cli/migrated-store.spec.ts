import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { runCli } from '../../lib/cli/cli.js';
import { JobStatus } from '../../lib/job/index.js';
import type { Retention } from '../../lib/store/job-store.js';
import { decodeJob } from '../../lib/store/redis/redis-job-codec.js';
import { RedisJobStore } from '../../lib/store/redis/redis-job-store.js';
import { StoreKeys } from '../../lib/store/redis/redis-keys.js';
import { FIXTURE_IDS as ID, loadFixture, readFixture } from '../fixtures/redis-0.1.0/fixture-file.js';
import { createStored, newJob } from '../store-conformance/job-store.conformance.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { RedisServer } from '../support/redis-server.js';

// The store of this version on data that 0.1.0 wrote and `migrate --yes` converted: the fixture
// test/fixtures/redis-0.1.0/store.json (seven jobs of two names in every status, written by 0.1.0's
// RedisJobStore and dumped with their TTLs by make-fixture.ts at commit 0ad6157), loaded
// under a key prefix of its own on a real redis-server. migrate runs through the CLI's entry point
// in this process (migrate.spec.ts runs the compiled CLI). The store's calls take the fixture's clock.

const fixture = readFixture(new URL('../fixtures/redis-0.1.0/store.json', import.meta.url));
const T = fixture.madeAt;
const DAY = 86_400_000;
const retention: Retention = { completedTtlMs: DAY, failedTtlMs: 7 * DAY };
const fixtureHash = (id: string) =>
  fixture.keys.find((entry) => entry.key === `${fixture.keyPrefix}:job:${id}`)!.value as Record<string, string>;

let server: RedisServer;
let redis: Redis;
const stores: RedisJobStore[] = [];

beforeAll(async () => {
  server = await RedisServer.start();
  redis = new Redis(server.url);
});

afterAll(async () => {
  await Promise.all(stores.map((store) => store.close()));
  redis?.disconnect();
  await server?.dispose();
});

/** The fixture migrated through `path`'s partition counts in turn (`migrate --yes`), and the store on it. */
async function migrated(...path: number[]): Promise<{ keyPrefix: string; store: RedisJobStore }> {
  const keyPrefix = `{migrated-${randomUUID()}}`;
  await loadFixture(redis, fixture, keyPrefix);
  return { keyPrefix, store: await migratedStore(keyPrefix, ...path) };
}

async function migratedStore(keyPrefix: string, ...path: number[]): Promise<RedisJobStore> {
  for (const partitions of path) {
    const output: string[] = [];
    const io = { stdout: (text: string) => output.push(text), stderr: (text: string) => output.push(text), env: {} };
    const args = ['migrate', '--yes', '--partitions', String(partitions), '--redis-url', server.url];
    expect({ code: await runCli([...args, '--key-prefix', keyPrefix], io), output }).toMatchObject({ code: 0 });
  }
  const partitions = path.at(-1)!;
  const store = new RedisJobStore({ url: server.url, keyPrefix, partitions, logger: new RecordingLogger() });
  stores.push(store);
  await store.init();
  return store;
}

// [1, 4]: migrated in place, then moved to 4 partitions (a store that changes its partition count).
const PATHS = [[1], [4], [1, 4], [4, 1]].map((path) => [path.join(', then '), path] as const);
describe.each(PATHS)('the store on 0.1.0 data migrated to %s partition(s)', (_, path) => {
  const partitions = path.at(-1)!;
  it('reads every job back as 0.1.0 stored it: status, payload, result, error, attempts, owner, progress', async () => {
    const { store } = await migrated(...path);
    for (const id of Object.values(ID)) expect(await store.getJob(id)).toEqual(decodeJob(fixtureHash(id)));
    expect(await store.getJob(ID.completed)).toMatchObject({
      status: JobStatus.Completed,
      result: { url: 'https://cdn.example/4c6b.mp4' },
      idempotencyKey: 'order-42',
    });
    expect(await store.getJob(ID.failed)).toMatchObject({
      status: JobStatus.Failed,
      error: { code: 'IMAGE_TOO_LARGE', message: 'the image is 90 megapixels, the limit is 50' },
    });
    expect(await store.getJob(ID.scheduled)).toMatchObject({
      status: JobStatus.Scheduled,
      retryCount: 1,
      retryDelayUntil: T + 60_000,
    });
    expect(await store.getJob(ID.inProgress)).toMatchObject({
      status: JobStatus.InProgress,
      progress: { percent: 10 },
      workerId: 'worker-0.1.0',
    });
    expect(await store.getJob(ID.queuedResize)).toMatchObject({
      status: JobStatus.Queued,
      owner: 'alice',
      payload: { id: ID.queuedResize, size: 3 },
    });
    expect(await store.getJob(ID.canceled)).toMatchObject({ status: JobStatus.Canceled });
  });

  const again = { name: 'Transcode', payload: { id: ID.completed, size: 3 }, idempotencyKey: 'order-42' };

  it('replays a submission with the idempotency key and the id of a migrated job', async () => {
    const { store } = await migrated(...path);
    const replay = await store.createJob(newJob({ ...again, id: ID.completed }), {
      now: T + 1000,
      maximumQueueSize: 100,
    });
    expect({ outcome: replay.outcome, id: 'job' in replay && replay.job.id }).toEqual({
      outcome: 'replayed',
      id: ID.completed,
    });
  });

  it("replays a submission with only the idempotency key of a migrated job (a generated id), whose key migrate left in the digest's partition too", async () => {
    const { store } = await migrated(...path);
    const replay = await store.createJob(
      { ...newJob({ ...again, id: randomUUID() }), idGenerated: true },
      { now: T + 1000, maximumQueueSize: 100 },
    );
    expect({ outcome: replay.outcome, id: 'job' in replay && replay.job.id }).toEqual({
      outcome: 'replayed',
      id: ID.completed,
    });
  });

  it('hands the Queued jobs to workers of their names, runs the Scheduled one when due, and completes them', async () => {
    const { store } = await migrated(...path);
    const claim = (names: string[], now: number) =>
      store.claimDueJobs({ workerId: 'worker-2', names, limit: 10, leaseMs: 30_000, now, maxConcurrentJobs: null });
    // A second apart: with several partitions, a claim visits every partition at least once a second.
    const resize = await claim(['Resize'], T + 1000);
    expect(resize.map(({ job }) => job.id)).toEqual([ID.queuedResize]);
    const transcode = await claim(['Transcode'], T + 2000);
    expect(transcode.map(({ job }) => job.id)).toEqual([ID.queuedTranscode]);
    expect(await claim(['Resize', 'Transcode'], T + 3000)).toEqual([]);
    const retried = await claim(['Resize'], T + 60_000);
    expect(retried.map(({ job }) => [job.id, job.retryCount])).toEqual([[ID.scheduled, 1]]);

    for (const { lease } of [...resize, ...transcode, ...retried]) {
      expect(await store.completeJob(lease, { done: lease.jobId }, { now: T + 61_000, retention })).toBe('completed');
      expect(await store.getJob(lease.jobId)).toMatchObject({
        status: JobStatus.Completed,
        result: { done: lease.jobId },
      });
    }
  });

  it('takes the InProgress job back once its 0.1.0 lease has expired, and a worker runs it', async () => {
    const { store } = await migrated(...path);
    const leaseEnd = Number(fixtureHash(ID.inProgress).leaseExpiresAt);
    const sweep = (now: number) =>
      store.recoverJobs({ now, maxInProgressMs: DAY, maxRecoveries: 2, lockMs: 1, retention });
    expect((await sweep(leaseEnd - 1))?.requeued).toEqual([]);
    expect((await sweep(leaseEnd + 1))?.requeued).toEqual([ID.inProgress]);
    const [claimed] = await store.claimDueJobs({
      workerId: 'worker-2',
      names: ['Transcode'],
      limit: 1,
      leaseMs: 30_000,
      now: leaseEnd + 2,
      maxConcurrentJobs: null,
    });
    expect(claimed?.job).toMatchObject({ id: ID.inProgress, recoveryCount: 1, progress: { percent: 10 } });
  });

  it('keeps retention: finished jobs keep their TTL and leave the counts when their retention ends', async () => {
    const { keyPrefix, store } = await migrated(...path);
    const keys = new StoreKeys(keyPrefix, partitions);
    for (const id of [ID.completed, ID.failed, ID.canceled]) {
      const original = fixture.keys.find((entry) => entry.key.endsWith(`:job:${id}`))!.pttl;
      const pttl = await redis.pttl(keys.job(id));
      expect({ id, kept: pttl > original - 60_000 && pttl <= original }).toEqual({ id, kept: true });
    }
    const stats = await store.stats(T);
    expect(stats.counts).toEqual({ Queued: 2, Scheduled: 1, InProgress: 1, Completed: 1, Failed: 1, Canceled: 1 });
    expect(stats.names).toMatchObject({
      Resize: { waiting: 2, inProgress: 0 },
      Transcode: { waiting: 1, inProgress: 1 },
    });
    // Completed and Canceled were kept a day, Failed a week.
    expect((await store.stats(T + 2 * DAY)).counts).toMatchObject({ Completed: 0, Failed: 1, Canceled: 0 });
  });
});

describe.each([1, 4])('more jobs than one batch of the migration holds, to %i partition(s)', (partitions) => {
  it('reads every job back and hands the Queued ones out, none lost and none twice', async () => {
    const keyPrefix = `{migrated-${randomUUID()}}`;
    await loadFixture(redis, fixture, keyPrefix);
    // 0.1.0 jobs as its store wrote them: copies of the fixture's Queued and Completed ones under new ids.
    const [queued, completed] = [fixtureHash(ID.queuedTranscode), fixtureHash(ID.completed)];
    const copies = new Map<string, Record<string, string>>();
    const write = redis.multi();
    for (let i = 0; i < 500; i++) {
      const id = randomUUID();
      if (i % 2 === 0) {
        const seq = String(100 + i);
        copies.set(id, { ...queued, id, seq });
        write.hset(`${keyPrefix}:job:${id}`, copies.get(id)!).zadd(`${keyPrefix}:status:Queued`, seq, id);
        write.zadd(`${keyPrefix}:waiting`, T + i, `${seq.padStart(16, '0')}:${id}`);
      } else {
        copies.set(id, { ...completed, id });
        write.hset(`${keyPrefix}:job:${id}`, copies.get(id)!).pexpire(`${keyPrefix}:job:${id}`, DAY);
        write.zadd(`${keyPrefix}:status:Completed`, T + DAY, id);
      }
    }
    await write.exec();
    const store = await migratedStore(keyPrefix, partitions);

    for (const [id, fields] of copies) expect(await store.getJob(id)).toEqual(decodeJob(fields));
    expect((await store.stats(T)).counts).toMatchObject({ Queued: 252, Completed: 251 });
    const claimed = await store.claimDueJobs({
      workerId: 'worker-2',
      names: ['Transcode'],
      limit: 1000,
      leaseMs: 30_000,
      now: T + 1000,
      maxConcurrentJobs: null,
    });
    const queuedIds = [ID.queuedTranscode, ...[...copies].filter(([, f]) => f.status === 'Queued').map(([id]) => id)];
    expect(claimed.map(({ job }) => job.id).sort()).toEqual([...queuedIds].sort());
    if (partitions === 1) expect(claimed.map(({ job }) => job.id)).toEqual(queuedIds);
  });
});

it('moved from 4 partitions to 1, the jobs that store numbered by time and a job submitted after the move are all claimed', async () => {
  const keyPrefix = `{moved-${randomUUID()}}`;
  const before = new RedisJobStore({ url: server.url, keyPrefix, partitions: 4, logger: new RecordingLogger() });
  await before.init();
  const due = T + 1000;
  const moved = [newJob({ name: 'Resize' }), newJob({ name: 'Resize' })];
  for (const job of moved) await createStored(before, job, { now: due, maximumQueueSize: 100 });
  await before.close();

  const store = await migratedStore(keyPrefix, 1);
  const later = newJob({ name: 'Resize' });
  await createStored(store, later, { now: due, maximumQueueSize: 100 });
  const claimed = await store.claimDueJobs({
    workerId: 'worker-2',
    names: ['Resize'],
    limit: 3,
    leaseMs: 30_000,
    now: due,
    maxConcurrentJobs: null,
  });
  expect(claimed.map(({ job }) => job.id).sort()).toEqual([...moved, later].map((job) => job.id).sort());
});

it('a store of this version on unmigrated 0.1.0 data fails at startup naming the migrate command', async () => {
  const keyPrefix = `{unmigrated-${randomUUID()}}`;
  await loadFixture(redis, fixture, keyPrefix);
  const store = new RedisJobStore({ url: server.url, keyPrefix, logger: new RecordingLogger() });
  stores.push(store);
  await expect(store.init()).rejects.toThrow(
    `The Redis store under key prefix '${keyPrefix}' holds data in the layout of nestjs-async-endpoints 0.1.0. ` +
      'Stop the 0.1.0 processes and run `npx nestjs-async-endpoints migrate` to convert it, then start again.',
  );
});
