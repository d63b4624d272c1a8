import { Redis } from 'ioredis';
import type { JsonValue } from '../../lib/job/index.js';
import type { ClaimOptions, Retention, StoreEvent, UnreadableJobReport } from '../../lib/store/job-store.js';
import { COMMAND_TIMEOUT_MS } from '../../lib/store/redis/redis-connections.js';
import { RedisJobStore, type RedisStoreOptions } from '../../lib/store/redis/redis-job-store.js';
import { undeclaredKeysScriptShas } from '../../lib/store/redis/redis-scripts.js';
import { idempotencyDigest, StoreKeys } from '../../lib/store/redis/redis-keys.js';
import { StoreUnavailableError } from '../../lib/errors/store-unavailable.error.js';
import { newJob } from '../store-conformance/job-store.conformance.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { RedisServer } from '../support/redis-server.js';

const retention: Retention = { completedTtlMs: 60_000, failedTtlMs: 60_000 };
const FAIL_FAST_MS = 2000;

let prefixes = 0;
const openStores: RedisJobStore[] = [];

/** A fresh store on its own key prefix, initialised; closed after the test. */
async function openStore(server: RedisServer, options: RedisStoreOptions = {}) {
  const logger = new RecordingLogger();
  const storeKeys = new StoreKeys(`{ae-redis-${++prefixes}}`, options.partitions ?? 1);
  const store = new RedisJobStore({ url: server.url, keyPrefix: storeKeys.prefix, logger, ...options });
  openStores.push(store);
  await store.init();
  // With one partition (the default), its keys are the store's.
  return { store, keys: storeKeys.partitions[0]!, storeKeys, logger };
}

afterEach(async () => {
  await Promise.all(openStores.splice(0).map((store) => store.close()));
});

const claimOptions = (now: number, limit = 10, leaseMs = 30_000): ClaimOptions => ({
  workerId: 'worker-a',
  names: ['Process'],
  limit,
  leaseMs,
  now,
  maxConcurrentJobs: null,
});

async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** How long a call took to settle, and how it settled. */
async function timed(call: () => Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const started = performance.now();
  try {
    await call();
    return { ms: performance.now() - started, error: undefined };
  } catch (error) {
    return { ms: performance.now() - started, error };
  }
}

describe('RedisJobStore on a running Redis', () => {
  let server: RedisServer;
  let admin: Redis;

  beforeAll(async () => {
    server = await RedisServer.start();
    admin = new Redis(server.url);
  });

  afterAll(async () => {
    await admin?.quit();
    await server?.dispose();
  });

  describe('bad entries never block the queue', () => {
    it('claims past a waiting entry whose job hash is gone, and drops it', async () => {
      const { store, keys } = await openStore(server);
      const now = Date.now();
      const [ghost, next] = [newJob(), newJob()];
      await store.createJob(ghost, { now, maximumQueueSize: 100 });
      await store.createJob(next, { now: now + 1, maximumQueueSize: 100 });
      await admin.del(keys.job(ghost.id));

      const claimed = await store.claimDueJobs(claimOptions(now + 10, 1));

      expect(claimed.map((c) => c.job.id)).toEqual([next.id]);
      expect(await admin.zcard(keys.waiting('Process'))).toBe(0);
      expect((await store.stats(now + 10)).counts).toMatchObject({ Queued: 0, InProgress: 1 });
    });

    it("claims, runs and completes a job whose payload is nested 1,001 deep, past Lua cjson's limit", async () => {
      const { store } = await openStore(server);
      const now = Date.now();
      const deep = JSON.parse(`${'['.repeat(1001)}${']'.repeat(1001)}`) as JsonValue;
      const job = { ...newJob(), payload: deep };
      await store.createJob(job, { now, maximumQueueSize: 100 });

      const [claimed] = await store.claimDueJobs(claimOptions(now + 10, 1));
      expect(claimed?.job.payload).toEqual(deep);
      expect(await store.completeJob(claimed!.lease, deep, { now: now + 20, retention })).toBe('completed');

      expect(await store.getJob(job.id)).toMatchObject({ status: 'Completed', payload: deep, result: deep });
    });

    it('drops a waiting entry whose key is not a hash, leaves the key as it is and reports it', async () => {
      const { store, keys } = await openStore(server);
      const now = Date.now();
      const [bad, good] = [newJob(), newJob()];
      await store.createJob(bad, { now, maximumQueueSize: 100 });
      await store.createJob(good, { now: now + 1, maximumQueueSize: 100 });
      await admin.multi().del(keys.job(bad.id)).set(keys.job(bad.id), 'garbage').exec();
      const reports: UnreadableJobReport[] = [];

      const claimed = await store.claimDueJobs({ ...claimOptions(now + 10, 1), onUnreadable: (r) => reports.push(r) });

      expect(claimed.map((c) => c.job.id)).toEqual([good.id]);
      expect(reports).toEqual([{ jobId: bad.id, failed: false, message: expect.stringContaining('not a hash') }]);
      expect((await store.stats(now + 10)).counts).toMatchObject({ Queued: 0, InProgress: 1, Failed: 0 });
      expect(await store.getJob(bad.id)).toBeNull();
      expect(await admin.get(keys.job(bad.id))).toBe('garbage');
    });

    it('answers a conflict, never an error, to a submission that names a job whose fields no longer decode, and leaves that job as it is', async () => {
      const { store, keys } = await openStore(server);
      const now = Date.now();
      const job = newJob();
      await store.createJob(job, { now, maximumQueueSize: 100 });
      await admin.hset(keys.job(job.id), 'payload', '{broken');

      const replay = await store.createJob(job, { now: now + 1, maximumQueueSize: 100 });

      expect(replay).toMatchObject({ outcome: 'conflict', job: { id: job.id } });
      expect(await admin.hget(keys.job(job.id), 'payload')).toBe('{broken');
      expect((await store.stats(now + 1)).counts.Queued).toBe(1);
    });

    const corruptions: [string, (key: string) => Promise<unknown>][] = [
      ['has a payload that is not JSON', (key) => admin.hset(key, 'payload', '{broken')],
      ['has a maxRetries that is not a number', (key) => admin.hset(key, 'maxRetries', 'many')],
      ['has an unknown status', (key) => admin.hset(key, 'status', 'Lost')],
      ['misses a required field', (key) => admin.hdel(key, 'name')],
    ];

    it.each(corruptions)(
      'fails a job whose hash %s with JOB_UNREADABLE, reports it, keeps it for its retention and claims the next',
      async (_case, corrupt) => {
        const { store, keys } = await openStore(server);
        const now = Date.now();
        const [bad, good] = [newJob(), newJob()];
        await store.createJob(bad, { now, maximumQueueSize: 100 });
        await store.createJob(good, { now: now + 1, maximumQueueSize: 100 });
        await corrupt(keys.job(bad.id));
        const reports: UnreadableJobReport[] = [];

        const claimed = await store.claimDueJobs({
          ...claimOptions(now + 10, 1),
          retention,
          onUnreadable: (r) => reports.push(r),
        });

        expect(claimed.map((c) => c.job.id)).toEqual([good.id]);
        expect(reports).toEqual([
          { jobId: bad.id, failed: true, message: expect.stringContaining(`Job ${bad.id} cannot be read`) },
        ]);
        expect((await store.stats(now + 10)).counts).toMatchObject({ Queued: 0, InProgress: 1, Failed: 1 });
        const failed = await store.getJob(bad.id);
        expect(failed).toMatchObject({ id: bad.id, status: 'Failed', error: { code: 'JOB_UNREADABLE' } });
        expect(await store.cancelJob(bad.id, { now: now + 20, retention })).toMatchObject({
          outcome: 'already-terminal',
        });
        const ttl = await admin.pttl(keys.job(bad.id));
        expect(ttl).toBeGreaterThan(0);
        expect(ttl).toBeLessThanOrEqual(retention.failedTtlMs);
        expect(await admin.zscore(keys.statusIndex.Failed, bad.id)).not.toBeNull();
        expect(await admin.zcard(keys.waiting('Process'))).toBe(0);
      },
    );

    it('drops the lease of a job that went missing while InProgress, and fails one whose hash became unreadable, counting both', async () => {
      const { store, keys } = await openStore(server);
      const now = Date.now();
      const [gone, broken] = [newJob(), newJob()];
      await store.createJob(gone, { now, maximumQueueSize: 100 });
      await store.createJob(broken, { now, maximumQueueSize: 100 });
      await store.claimDueJobs(claimOptions(now, 2, 1000));
      await admin.del(keys.job(gone.id));
      await admin.hset(keys.job(broken.id), 'status', 'Lost');

      const report = await store.recoverJobs({
        now: now + 1000,
        maxInProgressMs: 3_600_000,
        maxRecoveries: 2,
        lockMs: 1,
        retention,
      });

      expect(report).toEqual({ requeued: [], exhausted: [], canceled: [], removedEntries: 2 });
      expect((await store.stats(now + 1000)).counts).toMatchObject({ InProgress: 0, Failed: 1 });
      expect(await store.getJob(broken.id)).toMatchObject({ status: 'Failed', error: { code: 'JOB_UNREADABLE' } });
      expect(await admin.pttl(keys.job(broken.id))).toBeGreaterThan(0);
      expect(await admin.zcard(keys.leases('Process'))).toBe(0);
      expect(await admin.zcard(keys.started)).toBe(0);
    });

    it('fails an InProgress job whose name field is gone and still requeues the other expired job of its partition', async () => {
      const { store, keys } = await openStore(server);
      const now = Date.now();
      const [nameless, other] = [newJob(), newJob()];
      await store.createJob(nameless, { now, maximumQueueSize: 100 });
      await store.createJob(other, { now, maximumQueueSize: 100 });
      await store.claimDueJobs(claimOptions(now, 2, 1000));
      await admin.hdel(keys.job(nameless.id), 'name');

      const report = await store.recoverJobs({
        now: now + 1000,
        maxInProgressMs: 3_600_000,
        maxRecoveries: 2,
        lockMs: 1,
        retention,
      });

      expect(report).toEqual({ requeued: [other.id], exhausted: [], canceled: [], removedEntries: 1 });
      expect(await store.getJob(nameless.id)).toMatchObject({ status: 'Failed', error: { code: 'JOB_UNREADABLE' } });
      expect(await store.getJob(other.id)).toMatchObject({ status: 'Queued' });
      expect(await admin.zcard(keys.started)).toBe(0);
    });
  });

  describe('round trips', () => {
    let monitor: Redis;
    const seen: { args: string[]; source: string }[] = [];
    let markers = 0;

    beforeAll(async () => {
      monitor = await admin.monitor();
      monitor.on('monitor', (_time: string, args: string[], source: string) => seen.push({ args, source }));
    });

    afterAll(() => {
      monitor?.disconnect();
    });

    /** The commands the application sent to Redis during `action` (not those run inside scripts). */
    async function commandsSentBy(action: () => Promise<unknown>): Promise<string[]> {
      const start = `start-${++markers}`;
      const end = `end-${markers}`;
      await admin.echo(start);
      await action();
      await admin.echo(end);
      await eventually(async () => (seen.some((entry) => entry.args[1] === end) ? true : undefined));
      const from = seen.findIndex((entry) => entry.args[1] === start);
      const to = seen.findIndex((entry) => entry.args[1] === end);
      return seen
        .slice(from + 1, to)
        .filter((entry) => entry.source !== 'lua')
        .map((entry) => entry.args[0]!.toLowerCase());
    }

    it('submits, claims a batch of 10 and completes in one round trip each', async () => {
      const { store } = await openStore(server);
      const now = Date.now();
      // A script's first call on a connection is an EVAL (one round trip too); one lifecycle first, so
      // that the counts below show the steady state: EVALSHA.
      await store.createJob(newJob(), { now, maximumQueueSize: 100 });
      const [warmUp] = await store.claimDueJobs(claimOptions(now, 1));
      await store.renewLeases([warmUp!.lease], { now, leaseMs: 30_000 });
      await store.completeJob(warmUp!.lease, null, { now, retention });

      const jobs = Array.from({ length: 10 }, () => newJob());
      const submit = await commandsSentBy(() => store.createJob(jobs[0]!, { now, maximumQueueSize: 100 }));
      for (const job of jobs.slice(1)) await store.createJob(job, { now, maximumQueueSize: 100 });
      let claimed: Awaited<ReturnType<typeof store.claimDueJobs>> = [];
      const claim = await commandsSentBy(async () => {
        claimed = await store.claimDueJobs(claimOptions(now, 10));
      });
      const renew = await commandsSentBy(() =>
        store.renewLeases(
          claimed.map((c) => c.lease),
          { now, leaseMs: 30_000 },
        ),
      );
      const complete = await commandsSentBy(() => store.completeJob(claimed[0]!.lease, 'done', { now, retention }));
      const read = await commandsSentBy(() => store.getJob(jobs[0]!.id));

      // The wake-up SPUBLISH rides in the same pipelined write as the script: one round trip.
      expect(submit).toEqual(['evalsha', 'spublish']);
      expect(claim).toEqual(['evalsha']);
      expect(claimed).toHaveLength(10);
      // The claim reply carries whole jobs: the worker needs no second read.
      expect(claimed.map((c) => c.job.payload)).toEqual(jobs.map(() => ({ data: 'hello' })));
      expect(renew).toEqual(['evalsha']);
      expect(complete).toEqual(['evalsha']);
      expect(read).toEqual(['hgetall']);
    });

    it('sends a claim made while completions of its partition wait for their batch with them: one script call completes them and claims', async () => {
      const { store } = await openStore(server);
      const now = Date.now();
      const warmUp = newJob();
      await store.createJob(warmUp, { now, maximumQueueSize: 100 });
      const [warm] = await store.claimDueJobs(claimOptions(now, 1));
      await store.completeJob(warm!.lease, null, { now, retention });
      const jobs = Array.from({ length: 10 }, () => newJob());
      for (const job of jobs) await store.createJob(job, { now, maximumQueueSize: 100 });
      const first = await store.claimDueJobs(claimOptions(now, 5));
      // The worker's first claim after the warm-up took the 5 oldest.
      expect(first.map((c) => c.job.id)).toEqual(jobs.slice(0, 5).map((job) => job.id));
      // A lease that no longer holds: its completion rides too, and is told so.
      await store.releaseJob(first[4]!.lease, { now, retention });
      let outcomes: string[] = [];
      let next: Awaited<ReturnType<typeof store.claimDueJobs>> = [];
      const sent = await commandsSentBy(async () => {
        // The first completion goes alone at once; the others wait for the moment's batch, and the
        // claim made in the same moment goes with them.
        const completions = first.map((c, i) => store.completeJob(c.lease, { n: i }, { now, retention }));
        const claim = store.claimDueJobs(claimOptions(now, 5));
        [outcomes, next] = await Promise.all([Promise.all(completions), claim]);
      });
      expect(sent).toEqual(['evalsha', 'evalsha']);
      expect(outcomes).toEqual(['completed', 'completed', 'completed', 'completed', 'lease-lost']);
      // The released job went back to the head of the queue: the riding claim took it, and the next 4.
      expect(next.map((c) => c.job.id)).toEqual([jobs[4]!.id, ...jobs.slice(5, 9).map((job) => job.id)]);
      for (const c of next) expect((await store.getJob(c.job.id))!.status).toBe('InProgress');
      for (const [i, c] of first.slice(0, 4).entries()) {
        expect(await store.getJob(c.job.id)).toMatchObject({ status: 'Completed', result: { n: i } });
      }
      expect((await store.getJob(jobs[9]!.id))!.status).toBe('Queued');
    });

    it("answers completions that a failing claim rode on as written, and fails only the claim, with Redis's error", async () => {
      const { store, keys } = await openStore(server);
      const now = Date.now();
      const jobs = Array.from({ length: 5 }, () => newJob());
      for (const job of jobs) await store.createJob(job, { now, maximumQueueSize: 100 });
      const [warmUp, ...first] = await store.claimDueJobs(claimOptions(now, 4));
      // A script's first call on a connection is an EVAL: one completion first.
      await store.completeJob(warmUp!.lease, null, { now, retention });
      const admin = new Redis(server.url);
      try {
        // The queue's key tampered with: the claim's read of it fails.
        await admin.del(keys.waiting('Process'));
        await admin.set(keys.waiting('Process'), 'not a zset');
        let claim: Promise<unknown> = Promise.resolve();
        const sent = await commandsSentBy(async () => {
          const completions = first.map((c) => store.completeJob(c.lease, null, { now, retention }));
          claim = store.claimDueJobs(claimOptions(now, 3));
          claim.catch(() => undefined);
          await expect(Promise.all(completions)).resolves.toEqual(['completed', 'completed', 'completed']);
        });
        expect(sent).toEqual(['evalsha', 'evalsha']);
        await expect(claim).rejects.toThrow('WRONGTYPE');
        for (const c of first) expect((await store.getJob(c.job.id))!.status).toBe('Completed');
      } finally {
        admin.disconnect();
      }
    });

    it('sends a burst of 12 generated-id submissions to a 4-partition store in two script calls, all in one partition', async () => {
      const { store, storeKeys } = await openStore(server, { partitions: 4 });
      const now = Date.now();
      // One script call per partition first (EVAL), so that the counts below show EVALSHA.
      for (let i = 0; i < 8; i++) await store.createJob(newJob(), { now, maximumQueueSize: 100 });
      let results: Awaited<ReturnType<typeof store.createJob>>[] = [];
      const sent = await commandsSentBy(async () => {
        results = await Promise.all(
          Array.from({ length: 12 }, () => store.createJob(newJob(), { now, maximumQueueSize: 100 })),
        );
      });
      // The first goes alone at once, the 11 made meanwhile together: with ids of their own, they would
      // have gone to 4 partitions in up to 8 calls.
      expect(sent).toEqual(['evalsha', 'spublish', 'evalsha', 'spublish']);
      const ids = results.map((result) => (result as { job: { id: string } }).job.id);
      expect(new Set(ids.map((id) => storeKeys.partitionIndexOf(id))).size).toBe(1);
      for (const id of ids) expect((await store.getJob(id))!.status).toBe('Queued');
    });

    it('sends the submissions of one moment in one script call, each answered as if it ran alone', async () => {
      const { store } = await openStore(server);
      const now = Date.now();
      await store.createJob(newJob(), { now, maximumQueueSize: 100 });
      const keyed = newJob({ idempotencyKey: 'order-1' });
      const replay = { ...keyed, id: newJob().id };
      const conflict = { ...keyed, id: newJob().id, fingerprint: 'another payload' };
      const plain = Array.from({ length: 17 }, () => newJob());
      let results: Awaited<ReturnType<typeof store.createJob>>[] = [];
      const sent = await commandsSentBy(async () => {
        results = await Promise.all(
          [keyed, replay, conflict, ...plain].map((job) => store.createJob(job, { now, maximumQueueSize: 100 })),
        );
      });

      // The first goes alone at once; the 19 made while it was on its way, together (each script with
      // its wake-up SPUBLISH in one pipelined write). The replay and the conflict met a key mapped to a job
      // their call had not declared: they go again together, with its hash declared.
      expect(sent).toEqual(['evalsha', 'spublish', 'evalsha', 'spublish', 'evalsha', 'spublish']);
      expect(results.map((result) => result.outcome)).toEqual([
        'created',
        'replayed',
        'conflict',
        ...plain.map(() => 'created'),
      ]);
      expect(results[1]).toMatchObject({ job: { id: keyed.id } });
      for (const job of [keyed, ...plain]) expect((await store.getJob(job.id))!.status).toBe('Queued');
      expect((await store.stats(now)).counts.Queued).toBe(19);
    });

    it("holds the queue limit for each submission of one script call, and records each of the batch's names", async () => {
      const { store, keys } = await openStore(server);
      const now = Date.now();
      let results: Awaited<ReturnType<typeof store.createJob>>[] = [];
      const sent = await commandsSentBy(async () => {
        // The first goes alone at once, the other four together in one script call.
        results = await Promise.all(
          ['Process', 'Process', 'Report', 'Process', 'Report'].map((name) =>
            store.createJob(newJob({ name }), { now, maximumQueueSize: 3 }),
          ),
        );
      });
      expect(sent.filter((command) => command.startsWith('eval'))).toHaveLength(2);
      expect(results.map((result) => result.outcome)).toEqual([
        'created',
        'created',
        'created',
        'queue-full',
        'queue-full',
      ]);
      expect(results.slice(3)).toEqual([
        { outcome: 'queue-full', waiting: 3 },
        { outcome: 'queue-full', waiting: 3 },
      ]);
      expect((await admin.smembers(keys.names)).sort()).toEqual(['Process', 'Report']);
    });

    it('answers a failing submission with its own error and stores the others of its batch', async () => {
      const { store, keys } = await openStore(server);
      const now = Date.now();
      await store.createJob(newJob(), { now, maximumQueueSize: 100 });
      // Tampered with: the idempotency map is no hash, so a keyed submission cannot be checked.
      await admin.set(keys.idempotency, 'not a hash');
      const keyed = newJob({ idempotencyKey: 'order-2' });
      const plain = [newJob(), newJob()];
      const first = store.createJob(newJob(), { now, maximumQueueSize: 100 });
      const batch = [plain[0]!, keyed, plain[1]!].map((job) =>
        store.createJob(job, { now, maximumQueueSize: 100 }).then(
          (result) => result.outcome,
          (error: Error) => error.message,
        ),
      );
      await first;

      const [before, failed, after] = await Promise.all(batch);
      expect([before, after]).toEqual(['created', 'created']);
      expect(failed).toMatch(/^Redis job store: .*WRONGTYPE/);
      for (const job of plain) expect((await store.getJob(job.id))!.status).toBe('Queued');
      expect(await store.getJob(keyed.id)).toBeNull();
    });

    it('completes the attempts of one moment in one script call; a lost lease answers for its job alone', async () => {
      const { store } = await openStore(server);
      const now = Date.now();
      const jobs = Array.from({ length: 7 }, () => newJob());
      for (const job of jobs) await store.createJob(job, { now, maximumQueueSize: 100 });
      const [warmUp, ...claimed] = await store.claimDueJobs(claimOptions(now, 7));
      // The script's first call on a connection is an EVAL.
      await store.completeJob(warmUp!.lease, null, { now, retention });
      const leases = claimed.map((claim) => claim.lease);
      leases[3] = { ...leases[3]!, token: 'a token that lost its lease' };
      let outcomes: string[] = [];
      const sent = await commandsSentBy(async () => {
        outcomes = await Promise.all(leases.map((lease, i) => store.completeJob(lease, { n: i }, { now, retention })));
      });

      expect(sent).toEqual(['evalsha', 'evalsha']);
      expect(outcomes).toEqual(['completed', 'completed', 'completed', 'lease-lost', 'completed', 'completed']);
      for (const [i, lease] of leases.entries()) {
        const job = (await store.getJob(lease.jobId))!;
        expect(job.status).toBe(i === 3 ? 'InProgress' : 'Completed');
        expect(job.result).toEqual(i === 3 ? null : { n: i });
      }
    });
  });

  describe('the layout under the key prefix', () => {
    it('refuses to start on data of the 0.1.0 layout, naming the migrate command, and leaves it as it is', async () => {
      const prefix = `{ae-redis-${++prefixes}}`;
      await admin.zadd(`${prefix}:waiting`, 1, '0000000000000001:old');
      const store = new RedisJobStore({ url: server.url, keyPrefix: prefix, logger: new RecordingLogger() });
      openStores.push(store);
      await expect(store.init()).rejects.toThrow(
        `The Redis store under key prefix '${prefix}' holds data in the layout of nestjs-async-endpoints 0.1.0. Stop the 0.1.0 processes and run \`npx nestjs-async-endpoints migrate\``,
      );
      expect(await admin.exists(`${prefix}:meta`)).toBe(0);
      expect(await admin.zrange(`${prefix}:waiting`, '0', '-1')).toEqual(['0000000000000001:old']);
    });

    it('refuses to start with another partition count than the store was written with, naming store.partitions and the migrate command', async () => {
      const { storeKeys } = await openStore(server);
      expect(await admin.hgetall(storeKeys.meta)).toEqual({ layout: '2', partitions: '1' });
      const other = new RedisJobStore({
        url: server.url,
        keyPrefix: storeKeys.prefix,
        partitions: 4,
        logger: new RecordingLogger(),
      });
      openStores.push(other);
      await expect(other.init()).rejects.toThrow(
        `store.partitions = 4, but the Redis store under key prefix '${storeKeys.prefix}' was written with 1 partitions. Set store.partitions to 1, or stop every process and run \`npx nestjs-async-endpoints migrate\``,
      );
      expect(await admin.hgetall(storeKeys.meta)).toEqual({ layout: '2', partitions: '1' });
    });

    it('starts every one of 8 stores started at the same moment on an empty prefix, 20 times over', async () => {
      for (let round = 0; round < 20; round++) {
        const prefix = `{ae-redis-${++prefixes}}`;
        const stores = Array.from(
          { length: 8 },
          () => new RedisJobStore({ url: server.url, keyPrefix: prefix, partitions: 4, logger: new RecordingLogger() }),
        );
        openStores.push(...stores);
        // A store that read the layout between another's two writes refused: "written with undefined partitions".
        const started = await Promise.allSettled(stores.map((store) => store.init()));
        expect(started.filter((outcome) => outcome.status === 'rejected')).toEqual([]);
        expect(await admin.hgetall(`${prefix}:meta`)).toEqual({ layout: '2', partitions: '4' });
      }
    });

    it('refuses to start while a migrate run is under way or was cut short (<prefix>:migrating), naming the command', async () => {
      const { storeKeys } = await openStore(server);
      await admin.set(`${storeKeys.prefix}:migrating`, '4');
      const again = new RedisJobStore({ url: server.url, keyPrefix: storeKeys.prefix, logger: new RecordingLogger() });
      openStores.push(again);
      await expect(again.init()).rejects.toThrow(
        `A \`npx nestjs-async-endpoints migrate\` run on the Redis store under key prefix '${storeKeys.prefix}' is under way or was cut short`,
      );
    });
  });

  describe('several partitions', () => {
    it("draws a generated id into its idempotency key's partition, and keeps a chosen id as it is", async () => {
      const { store, storeKeys } = await openStore(server, { partitions: 4 });
      const now = Date.now();
      const options = { now, maximumQueueSize: 100 };
      for (let i = 0; i < 8; i++) {
        const generated = { ...newJob({ idempotencyKey: `key-${i}` }), idGenerated: true };
        const created = await store.createJob(generated, options);
        expect(created.outcome).toBe('created');
        const id = (created as { job: { id: string } }).job.id;
        const digestPartition = storeKeys.partitionIndexOf(idempotencyDigest(generated));
        expect(storeKeys.partitionIndexOf(id)).toBe(digestPartition);
        expect(await admin.exists(storeKeys.partitions[digestPartition]!.job(id))).toBe(1);
        const replay = await store.createJob({ ...newJob({ idempotencyKey: `key-${i}` }), idGenerated: true }, options);
        expect(replay).toMatchObject({ outcome: 'replayed', job: { id } });
      }
      const chosen = newJob({ id: 'client-chosen-id', idempotencyKey: 'chosen-key' });
      expect(await store.createJob({ ...chosen, idGenerated: false }, options)).toMatchObject({
        outcome: 'created',
        job: { id: 'client-chosen-id' },
      });
    });

    it("keeps a key sent with a chosen id in the id's partition: a repeat with the same id replays, the key with an id of another partition is another job (storage.md)", async () => {
      const { store, storeKeys } = await openStore(server, { partitions: 4 });
      const options = { now: Date.now(), maximumQueueSize: 100 };
      const [id, sameId, elsewhere] = ['a', 'b', 'c'].map((suffix) => {
        for (let i = 0; ; i++) {
          const candidate = `chosen-${suffix}-${i}`;
          // The first two ids in partition 0, the third in partition 1.
          if (storeKeys.partitionIndexOf(candidate) === (suffix === 'c' ? 1 : 0)) return candidate;
        }
      });
      const chosen = (jobId: string) => ({
        ...newJob({ id: jobId, idempotencyKey: 'chosen-key' }),
        idGenerated: false,
      });
      expect(await store.createJob(chosen(id!), options)).toMatchObject({ outcome: 'created', job: { id } });
      expect(await store.createJob(chosen(id!), options)).toMatchObject({ outcome: 'replayed', job: { id } });
      // Another id in the same partition finds the key there: the key's job wins, as on one partition.
      expect(await store.createJob(chosen(sameId!), options)).toMatchObject({ outcome: 'replayed', job: { id } });
      // An id of another partition looks the key up there, where it is not.
      expect(await store.createJob(chosen(elsewhere!), options)).toMatchObject({
        outcome: 'created',
        job: { id: elsewhere },
      });
    });

    it('spreads generated-id submissions evenly: the moments of submission take turns over the partitions', async () => {
      const { store, storeKeys } = await openStore(server, { partitions: 4 });
      const options = { now: Date.now(), maximumQueueSize: 1000 };
      const perPartition = [0, 0, 0, 0];
      const ids = new Set<string>();
      for (let moment = 0; moment < 20; moment++) {
        const results = await Promise.all(Array.from({ length: 7 }, () => store.createJob(newJob(), options)));
        const partitions = new Set<number>();
        for (const result of results) {
          const id = (result as { job: { id: string } }).job.id;
          ids.add(id);
          partitions.add(storeKeys.partitionIndexOf(id));
        }
        expect(partitions.size).toBe(1);
        perPartition[[...partitions][0]!]! += results.length;
      }
      // 20 moments in turn over 4 partitions: 5 moments of 7 jobs each.
      expect(perPartition).toEqual([35, 35, 35, 35]);
      // The ids drawn are distinct random UUIDs, each naming its job.
      expect(ids.size).toBe(140);
      for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect((await store.stats(options.now)).counts.Queued).toBe(140);
    });

    it('keeps the partitions within one moment of each other when moments differ in size (a burst, then lone submits)', async () => {
      const { store, storeKeys } = await openStore(server, { partitions: 4 });
      const options = { now: Date.now(), maximumQueueSize: 1000 };
      const perPartition = [0, 0, 0, 0];
      // In turn, every burst of 10 would land in the same partition: 60 jobs there, 6 in each other.
      for (let moment = 0; moment < 24; moment++) {
        const size = moment % 4 === 0 ? 10 : 1;
        const results = await Promise.all(Array.from({ length: size }, () => store.createJob(newJob(), options)));
        for (const result of results)
          perPartition[storeKeys.partitionIndexOf((result as { job: { id: string } }).job.id)]!++;
      }
      expect(perPartition.reduce((sum, count) => sum + count, 0)).toBe(78);
      expect(Math.max(...perPartition) - Math.min(...perPartition)).toBeLessThanOrEqual(10);
    });
  });

  describe('a client handed in', () => {
    it('is used, connected when lazy, and left open by close()', async () => {
      const client = new Redis(server.url, { lazyConnect: true });
      const listenersBefore = client.listenerCount('error');
      const { store } = await openStore(server, { client, url: undefined });
      expect(client.status).toBe('ready');
      const job = newJob();
      await store.createJob(job, { now: Date.now(), maximumQueueSize: 100 });

      await store.close();
      await store.close();

      expect(client.status).toBe('ready');
      expect(await client.ping()).toBe('PONG');
      expect(client.listenerCount('error')).toBe(listenersBefore);
      await expect(store.getJob(job.id)).rejects.toThrow('closed');
      await client.quit();
    });

    it('is refused when it has an ioredis keyPrefix, which would split the store', () => {
      const client = new Redis(server.url, { lazyConnect: true, keyPrefix: 'app:' });
      expect(() => new RedisJobStore({ client })).toThrow('keyPrefix');
      client.disconnect();
    });
  });

  it('names the two scripts that claim (claimJobs, completeJobs) by the SHA1s the server caches them under (those flagged for Dragonfly at startup)', async () => {
    const { store } = await openStore(server);
    const now = Date.now();
    await store.createJob(newJob(), { now, maximumQueueSize: 100 });
    const [claimed] = await store.claimDueJobs(claimOptions(now));
    await store.completeJob(claimed!.lease, null, { now, retention });
    const redis = new Redis(server.url);
    try {
      const shas = undeclaredKeysScriptShas();
      expect(shas).toHaveLength(2);
      expect(await redis.script('EXISTS', ...shas)).toEqual([1, 1]);
    } finally {
      redis.disconnect();
    }
  });

  it('claims 600 jobs in one call: each leased once, every index changed (the index writes go in slices of 1,000 values)', async () => {
    const { store, keys } = await openStore(server);
    const now = Date.now();
    const jobs = Array.from({ length: 600 }, () => newJob());
    await Promise.all(jobs.map((job) => store.createJob(job, { now, maximumQueueSize: 1000 })));
    const claimed = await store.claimDueJobs(claimOptions(now, 600));
    expect(new Set(claimed.map((c) => c.job.id))).toEqual(new Set(jobs.map((job) => job.id)));
    const { counts } = await store.stats(now);
    expect(counts).toMatchObject({ Queued: 0, InProgress: 600 });
    expect(await store.claimDueJobs(claimOptions(now, 10))).toEqual([]);
    // The indexes recovery reads hold every job: lease expiries and start times.
    expect(await admin.zcard(keys.leases('Process'))).toBe(600);
    expect(await admin.zcard(keys.started)).toBe(600);
    expect(await admin.zcard(keys.waiting('Process'))).toBe(0);
  });

  it('claims a job submitted after the sequence counter passed 1e14 (numbered in digits, not 1e+14)', async () => {
    const { store, keys } = await openStore(server);
    const redis = new Redis(server.url);
    try {
      await redis.set(keys.sequence, '179999999999999');
    } finally {
      redis.disconnect();
    }
    const now = Date.now();
    const created = await store.createJob(newJob({ name: 'Process' }), { now, maximumQueueSize: 100 });
    expect(created.outcome).toBe('created');
    const claimed = await store.claimDueJobs(claimOptions(now));
    expect(claimed.map((claim) => claim.job.id)).toEqual([created.outcome === 'created' && created.job.id]);
  });

  it('refuses a key prefix without a hash tag', () => {
    expect(() => new RedisJobStore({ keyPrefix: 'async-endpoints' })).toThrow('hash tag');
    expect(() => new RedisJobStore({ keyPrefix: '{}x' })).toThrow('hash tag');
  });

  it('tells listeners when a retry becomes due', async () => {
    const { store } = await openStore(server);
    const events: StoreEvent[] = [];
    store.subscribe((event) => events.push(event));
    const now = Date.now();
    await store.createJob(newJob(), { now, maximumQueueSize: 100 });
    const [claimed] = await store.claimDueJobs(claimOptions(now));
    await store.failJob(claimed!.lease, { code: 'E', message: 'x' }, { now, retryAt: now + 2000, retention });
    await eventually(async () => (events.length >= 2 ? true : undefined));
    expect(events).toEqual([
      { type: 'job-available', name: 'Process' },
      { type: 'job-available', name: 'Process', dueAt: now + 2000 },
    ]);
  });

  it('lets a listener added before a read hear every later event, whichever process makes it', async () => {
    // A long-poll subscribes, reads the job, then waits: the finish must not fall in between.
    const { store: reader, keys } = await openStore(server);
    const { store: writer } = await openStore(server, { keyPrefix: keys.prefix });
    const job = newJob();
    await writer.createJob(job, { now: Date.now(), maximumQueueSize: 100 });
    const events: StoreEvent[] = [];
    reader.subscribe((event) => events.push(event));
    expect((await reader.getJob(job.id))!.status).toBe('Queued');
    await writer.cancelJob(job.id, { now: Date.now(), retention });
    await eventually(async () => (events.length > 0 ? true : undefined), 2_000);
    expect(events).toEqual([{ type: 'job-finished', jobId: job.id }]);
  });

  it('spares a listener of worker events the job-finished traffic of every other process', async () => {
    const { store: worker, keys } = await openStore(server);
    const { store: other } = await openStore(server, { keyPrefix: keys.prefix });
    const subscribers = async (channel: string) =>
      ((await admin.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number])[1];
    const heard: StoreEvent[] = [];
    const stop = worker.subscribe((event) => heard.push(event), ['job-available', 'cancel-requested']);
    await eventually(async () => ((await subscribers(keys.events)) === 1 ? true : undefined));
    expect(await subscribers(keys.finished)).toBe(0);

    const job = newJob();
    await other.createJob(job, { now: Date.now(), maximumQueueSize: 100 });
    const [claimed] = await other.claimDueJobs(claimOptions(Date.now()));
    await other.completeJob(claimed!.lease, null, { now: Date.now(), retention });
    await eventually(async () => (heard.length > 0 ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(heard).toEqual([{ type: 'job-available', name: 'Process' }]);

    // A long-poll's listener subscribes to job-finished alone, and leaves it when done.
    const finished: StoreEvent[] = [];
    const stopFinished = worker.subscribe((event) => finished.push(event), ['job-finished']);
    await eventually(async () => ((await subscribers(keys.finished)) === 1 ? true : undefined));
    const canceled = newJob();
    await other.createJob(canceled, { now: Date.now(), maximumQueueSize: 100 });
    await other.cancelJob(canceled.id, { now: Date.now(), retention });
    await eventually(async () => (finished.length > 0 ? true : undefined));
    expect(finished).toEqual([{ type: 'job-finished', jobId: canceled.id }]);
    stopFinished();
    stop();
    await eventually(async () =>
      (await subscribers(keys.finished)) + (await subscribers(keys.events)) === 0 ? true : undefined,
    );
  });

  it('reports a noeviction policy as fine', async () => {
    const { store, logger } = await openStore(server);
    expect(store.diagnostics()).toMatchObject({ evictionPolicy: 'noeviction', evictionPolicyOk: true });
    expect(store.diagnostics().redisVersion).toMatch(/^\d+\.\d+/);
    expect(logger.messages('warn')).toEqual([]);
  });
});

describe('RedisJobStore startup checks', () => {
  const servers: RedisServer[] = [];
  const serverWith = async (...args: string[]) => {
    const server = await RedisServer.start(args);
    servers.push(server);
    return server;
  };

  afterAll(async () => {
    await Promise.all(servers.map((server) => server.dispose()));
  });

  it('warns when maxmemory-policy may evict jobs', async () => {
    const { store, logger } = await openStore(await serverWith('--maxmemory-policy', 'allkeys-lru'));
    expect(store.diagnostics()).toMatchObject({ evictionPolicy: 'allkeys-lru', evictionPolicyOk: false });
    expect(logger.messages('warn')).toEqual([expect.stringContaining("maxmemory-policy is 'allkeys-lru'")]);
  });

  it('reads the policy from INFO when CONFIG is disabled', async () => {
    const { store, logger } = await openStore(await serverWith('--rename-command', 'CONFIG', ''));
    expect(store.diagnostics()).toMatchObject({ evictionPolicy: 'noeviction', evictionPolicyOk: true });
    expect(logger.messages('warn')).toEqual([]);
  });

  it('says once that it cannot read the policy when neither CONFIG nor INFO answers', async () => {
    const server = await serverWith('--rename-command', 'CONFIG', '', '--rename-command', 'INFO', '');
    // ioredis' ready check needs INFO.
    const { store, logger } = await openStore(server, { options: { enableReadyCheck: false } });
    expect(store.diagnostics()).toEqual({ redisVersion: null, evictionPolicy: null, evictionPolicyOk: null });
    expect(logger.messages('warn')).toEqual([expect.stringContaining('Cannot read Redis maxmemory-policy')]);
    await store.createJob(newJob(), { now: Date.now(), maximumQueueSize: 100 });
  });
});

describe('RedisJobStore when Redis goes away', () => {
  let server: RedisServer;

  beforeAll(async () => {
    server = await RedisServer.start();
  });

  afterEach(async () => {
    server.resume();
    await server.start();
  });

  afterAll(async () => {
    await server?.dispose();
  });

  it('rejects calls within 2 s with StoreUnavailableError while Redis is down, and works again once it is back', async () => {
    const { store } = await openStore(server);
    const job = newJob();
    await store.createJob(job, { now: Date.now(), maximumQueueSize: 100 });

    await server.stop();
    const create = await timed(() => store.createJob(newJob(), { now: Date.now(), maximumQueueSize: 100 }));
    const read = await timed(() => store.getJob(job.id));
    const ping = await timed(() => store.ping());

    for (const attempt of [create, read, ping]) {
      expect(attempt.error).toBeInstanceOf(StoreUnavailableError);
      expect(attempt.ms).toBeLessThan(FAIL_FAST_MS);
    }
    expect((create.error as Error).message).toMatch(/^The redis job store is unavailable: /);
    // Refused before it was sent: certainly not run.
    expect(create.error).toMatchObject({ outcomeUnknown: false });

    // Restarted without persistence: empty, and without the scripts.
    await server.start();
    await eventually(() => store.ping().then(() => true));
    const again = newJob();
    expect((await store.createJob(again, { now: Date.now(), maximumQueueSize: 100 })).outcome).toBe('created');
    expect((await store.claimDueJobs(claimOptions(Date.now()))).map((c) => c.job.id)).toEqual([again.id]);
  });

  it('a store started while Redis is down serves nothing until it has checked the layout, and nothing at all when the partition count is wrong', async () => {
    const durable = await RedisServer.start(['--appendonly', 'yes', '--appendfsync', 'always']);
    try {
      const storeKeys = new StoreKeys(`{ae-redis-${++prefixes}}`, 1);
      const first = new RedisJobStore({ url: durable.url, keyPrefix: storeKeys.prefix, logger: new RecordingLogger() });
      openStores.push(first);
      await first.init();
      const job = newJob();
      await first.createJob(job, { now: Date.now(), maximumQueueSize: 100 });
      await durable.stop();

      const logger = new RecordingLogger();
      const wrong = new RedisJobStore({ url: durable.url, keyPrefix: storeKeys.prefix, partitions: 4, logger });
      openStores.push(wrong);
      await wrong.init();
      await durable.start();
      await eventually(async () => (logger.messages('error').length > 0 ? true : undefined));

      const create = await timed(() => wrong.createJob(newJob(), { now: Date.now(), maximumQueueSize: 100 }));
      expect(create.error).toBeInstanceOf(StoreUnavailableError);
      expect((create.error as Error).message).toContain('store.partitions = 4, but the Redis store under key prefix');
      await expect(wrong.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
      // The first store, reconnected, still finds the job where it was, and only it.
      expect(await eventually(async () => (await first.getJob(job.id)) ?? undefined)).toMatchObject({
        status: 'Queued',
      });
      expect((await first.stats(Date.now())).counts.Queued).toBe(1);
    } finally {
      await Promise.all(openStores.splice(0).map((store) => store.close()));
      await durable.dispose();
    }
  });

  it('rejects a call to a hung Redis with StoreUnavailableError at the 1.5 s command timeout (less than 1 s late), its outcome unknown', async () => {
    const { store } = await openStore(server);
    await store.ping();
    server.pause();
    const create = await timed(() => store.createJob(newJob(), { now: Date.now(), maximumQueueSize: 100 }));
    server.resume();
    expect(create.error).toBeInstanceOf(StoreUnavailableError);
    // Answered by the command timeout, under the bound by design; the test's own event-loop lag on a
    // loaded machine gets a second of slack on top.
    expect(COMMAND_TIMEOUT_MS).toBeLessThanOrEqual(FAIL_FAST_MS - 500);
    expect(create.ms).toBeGreaterThanOrEqual(COMMAND_TIMEOUT_MS - 50);
    expect(create.ms).toBeLessThan(COMMAND_TIMEOUT_MS + 1000);
    // Sent, unanswered: Redis runs it once it wakes, so its outcome is unknown.
    expect(create.error).toMatchObject({ outcomeUnknown: true });
  });

  it('loads its scripts again when Redis answers NOSCRIPT', async () => {
    const { store } = await openStore(server);
    const admin = new Redis(server.url);
    const noscriptErrors = async () =>
      Number(/errorstat_NOSCRIPT:count=(\d+)/.exec(await admin.info('errorstats'))?.[1] ?? 0);
    try {
      await store.createJob(newJob(), { now: Date.now(), maximumQueueSize: 100 });
      await store.createJob(newJob(), { now: Date.now(), maximumQueueSize: 100 });
      const before = await noscriptErrors();
      await admin.script('FLUSH');

      expect((await store.createJob(newJob(), { now: Date.now(), maximumQueueSize: 100 })).outcome).toBe('created');
      expect(await noscriptErrors()).toBe(before + 1);
      expect((await store.stats(Date.now())).counts.Queued).toBe(3);
    } finally {
      await admin.quit();
    }
  });

  it('starts while Redis is unreachable, and catches up when it comes', async () => {
    await server.stop();
    const { store, logger } = await openStore(server);
    expect(logger.messages('warn')).toEqual([expect.stringContaining('Redis is unreachable at startup')]);
    await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(store.diagnostics()).toMatchObject({ evictionPolicyOk: null });

    await server.start();
    await eventually(() => store.ping().then(() => true));
    await eventually(async () => (store.diagnostics().evictionPolicyOk === true ? true : undefined));
    expect((await store.createJob(newJob(), { now: Date.now(), maximumQueueSize: 100 })).outcome).toBe('created');
  });

  it("wakes a worker of the submitting process before the submit's answer is read", async () => {
    // Redis sends a SPUBLISH made inside the script after the script's reply; the store pipelines it
    // after the script instead, so that a worker beside the producer claims before the producer
    // goes on with its answer.
    const { store: worker, keys } = await openStore(server);
    const { store: producer } = await openStore(server, { keyPrefix: keys.prefix });
    const order: string[] = [];
    worker.subscribe(() => order.push('wake-up'), ['job-available']);
    await eventually(async () => {
      await producer.createJob(newJob(), { now: Date.now(), maximumQueueSize: 1000 });
      await new Promise((resolve) => setTimeout(resolve, 20));
      return order.length > 0 ? true : undefined;
    });
    for (let i = 0; i < 20; i++) {
      order.length = 0;
      await producer.createJob(newJob(), { now: Date.now(), maximumQueueSize: 1000 });
      order.push('answer');
      await new Promise((resolve) => setTimeout(resolve, 5));
      expect(order).toEqual(['wake-up', 'answer']);
    }
  });

  it('hears events again after Redis restarts', async () => {
    const { store } = await openStore(server);
    const events: StoreEvent[] = [];
    store.subscribe((event) => events.push(event));
    await store.createJob(newJob(), { now: Date.now(), maximumQueueSize: 100 });
    await eventually(async () => (events.length > 0 ? true : undefined));

    await server.restart();
    events.length = 0;
    // The subscriber reconnects on its own schedule; submit until its resubscription shows.
    const job = await eventually(async () => {
      const submitted = newJob();
      await store.createJob(submitted, { now: Date.now(), maximumQueueSize: 100 });
      await new Promise((resolve) => setTimeout(resolve, 50));
      return events.some((event) => event.type === 'job-available') ? submitted : undefined;
    });
    const [claimed] = await store.claimDueJobs(claimOptions(Date.now(), 100));
    await store.completeJob(claimed!.lease, null, { now: Date.now(), retention });
    await eventually(async () =>
      events.some((event) => event.type === 'job-finished' && event.jobId === claimed!.job.id) ? true : undefined,
    );
    expect(job).toBeDefined();
  });
});
