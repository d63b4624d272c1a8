import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import request from 'supertest';
import type { ClaimOptions, Retention } from '../../lib/store/job-store.js';
import { RedisJobStore } from '../../lib/store/redis/redis-job-store.js';
import { StoreUnavailableError } from '../../lib/errors/index.js';
import { newJob } from '../store-conformance/job-store.conformance.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { RedisServer } from '../support/redis-server.js';
import { startSampleApp } from '../support/sample-app.js';

const retention: Retention = { completedTtlMs: 60_000, failedTtlMs: 60_000 };
const claimOptions = (now: number, limit: number): ClaimOptions => ({
  workerId: 'w',
  names: ['Process'],
  limit,
  leaseMs: 30_000,
  now,
  maxConcurrentJobs: null,
});
const OUT_OF_MEMORY = 'Redis is out of memory';

/**
 * A Redis at its maxmemory under noeviction refuses writes. Submits must get 503, while the work already
 * queued drains: claims, completions, failures, releases and cancellations go through (allow-oom).
 */
describe('RedisJobStore on a Redis out of memory (maxmemory reached, noeviction)', () => {
  let server: RedisServer;
  let admin: Redis;
  let prefixes = 0;
  const closing: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    server = await RedisServer.start(['--maxmemory-policy', 'noeviction']);
    admin = new Redis(server.url);
  });

  afterEach(async () => {
    await admin.config('SET', 'maxmemory', '0');
    await admin.del('filler');
    for (const close of closing.splice(0)) await close();
  });

  afterAll(async () => {
    await admin?.quit();
    await server?.dispose();
  });

  /**
   * An 8 MB value, then maxmemory 4 MB below the memory in use: every write that adds data is refused.
   * The value is built inside Redis, 1 MB at a time: sent from here, it would sit in a query buffer
   * that Redis frees a moment later, taking the memory back under the limit.
   */
  async function fillRedis(): Promise<void> {
    await admin.eval("for _ = 1, 8 do redis.call('APPEND', KEYS[1], string.rep('x', 1000000)) end", 1, 'filler');
    const used = Number(/^used_memory:(\d+)/m.exec(await admin.info('memory'))![1]);
    await admin.config('SET', 'maxmemory', String(used - 4_000_000));
  }

  async function openStore() {
    const logger = new RecordingLogger();
    const store = new RedisJobStore({ url: server.url, keyPrefix: `{ae-oom-${++prefixes}}`, logger });
    closing.push(() => store.close());
    await store.init();
    return { store, logger };
  }

  it('refuses submits with StoreUnavailableError, logged once per outage, while existing jobs are claimed, completed, failed, released and canceled', async () => {
    const { store, logger } = await openStore();
    const now = Date.now();
    const jobs = [newJob(), newJob(), newJob(), newJob()];
    for (const job of jobs) await store.createJob(job, { now, maximumQueueSize: 100 });
    const [first, second] = await store.claimDueJobs(claimOptions(now, 2));
    await fillRedis();

    for (let i = 0; i < 3; i++) {
      const refusal = await store.createJob(newJob(), { now, maximumQueueSize: 100 }).catch((error: unknown) => error);
      expect(refusal).toBeInstanceOf(StoreUnavailableError);
      expect(refusal).toMatchObject({ outcomeUnknown: false, logged: true, message: expect.stringContaining('OOM') });
    }
    expect(logger.messages('warn').filter((line) => line.startsWith(OUT_OF_MEMORY))).toHaveLength(1);

    const [third] = await store.claimDueJobs(claimOptions(now + 1, 1));
    expect(third?.job.id).toBe(jobs[2]!.id);
    expect(await store.renewLeases([first!.lease, third!.lease], { now: now + 2, leaseMs: 30_000 })).toEqual({
      lost: [],
      cancelRequested: [],
    });
    expect(await store.completeJob(first!.lease, { done: true }, { now: now + 3, retention })).toBe('completed');
    expect(
      await store.failJob(second!.lease, { code: 'E', message: 'no' }, { now: now + 3, retryAt: null, retention }),
    ).toBe('failed');
    expect(await store.releaseJob(third!.lease, { now: now + 3, retention })).toBe('released');
    expect((await store.cancelJob(jobs[3]!.id, { now: now + 3, retention })).outcome).toBe('canceled');
    expect((await store.stats(now + 3)).counts).toMatchObject({ Queued: 1, Completed: 1, Failed: 1, Canceled: 1 });

    await admin.config('SET', 'maxmemory', '0');
    expect((await store.createJob(newJob(), { now, maximumQueueSize: 100 })).outcome).toBe('created');
    expect(logger.messages('log')).toContain(
      'Redis accepts submissions again: it has memory to spare below maxmemory.',
    );
    await fillRedis();
    await store.createJob(newJob(), { now, maximumQueueSize: 100 }).catch(() => undefined);
    expect(logger.messages('warn').filter((line) => line.startsWith(OUT_OF_MEMORY))).toHaveLength(2);
  });

  it('answers HTTP submits 503 problem+json with Retry-After, and logs the outage once, not per request', async () => {
    const logger = new RecordingLogger();
    const app: INestApplication = await startSampleApp(
      { store: { type: 'redis', url: server.url, keyPrefix: `{ae-oom-${++prefixes}}` }, worker: { enabled: false } },
      (nest) => nest.useLogger(logger),
    );
    closing.push(() => app.close());
    const http = request(app.getHttpServer());
    await http.post('/api/process').send({ data: 'before', delayMs: 0 }).expect(202);
    await fillRedis();

    for (let i = 0; i < 3; i++) {
      const response = await http
        .post('/api/process')
        .send({ data: `during-${i}`, delayMs: 0 })
        .expect(503);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.headers['retry-after']).toBeDefined();
      expect(response.body).toMatchObject({ status: 503, detail: expect.stringContaining('nothing was changed') });
    }
    const warnings = logger.messages('warn').filter((line) => /out of memory|OOM/.test(line));
    expect(warnings).toEqual([expect.stringMatching(new RegExp(`^${OUT_OF_MEMORY}`))]);
  });
});
