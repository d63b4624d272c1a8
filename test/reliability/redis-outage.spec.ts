import { randomUUID } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { JobStore, type RedisStoreConfig } from '../../lib/index.js';
import { COMMAND_TIMEOUT_MS } from '../../lib/store/redis/redis-connections.js';
import { RedisServer } from '../support/redis-server.js';
import { startSampleApp, waitFor } from '../support/sample-app.js';

/** The bound: while the store is down, a submit answers 503 within this. */
const SUBMIT_DEADLINE_MS = 2000;
/**
 * A hung Redis is answered when the command timeout fires (1.5 s, under the bound by design). What
 * the test measures on top is this process's own lag (supertest and the app share one event loop),
 * which a loaded CI machine can stretch past the 0.5 s to spare; the bound then gets this much slack.
 */
const HUNG_SLACK_MS = 1000;

/**
 * The sample on Redis through an outage: an API-only app and a worker app (two Nest apps, as two
 * processes would be) on one Redis with an append-only file, so that it comes back with its data.
 * Nothing is restarted but Redis.
 */
describe('The sample on Redis when Redis goes down and comes back', () => {
  let server: RedisServer | undefined;
  let api: INestApplication | undefined;
  let worker: INestApplication | undefined;
  const http = () => request(api!.getHttpServer());
  const slow: string[] = [];
  const queued: string[] = [];

  beforeAll(async () => {
    server = await RedisServer.start(['--appendonly', 'yes', '--appendfsync', 'always']);
    const store: RedisStoreConfig = { type: 'redis', url: server.url, keyPrefix: `{ae-outage-${randomUUID()}}` };
    api = await startSampleApp({ store, worker: { enabled: false } });
    worker = await startSampleApp({
      store,
      // Short leases and sweeps: a result that could not be written in the outage is redone soon after.
      worker: { maximumConcurrency: 2 },
      jobManager: { jobClaimTimeoutMs: 1500 },
      recovery: { recoveryCheckIntervalSeconds: 1 },
    });
  });

  afterAll(async () => {
    // Redis first back, so that the apps shut down as they normally would.
    await server?.start().catch(() => undefined);
    await worker?.close();
    await api?.close();
    await server?.dispose();
  });

  async function statusOf(id: string): Promise<string> {
    return (await http().get(`/jobs/${id}`).expect(200)).body.status;
  }

  it('runs two slow jobs and keeps ten queued behind them', async () => {
    // Long enough to be still running when Redis stops, also on a loaded machine (1 s was not, at times).
    for (let i = 0; i < 2; i++) {
      slow.push(
        (
          await http()
            .post('/api/process')
            .send({ data: `slow-${i}`, delayMs: 3000 })
            .expect(202)
        ).body.id,
      );
    }
    await waitFor(async () =>
      (await Promise.all(slow.map(statusOf))).every((s) => s === 'InProgress') ? true : undefined,
    );
    for (let i = 0; i < 10; i++) {
      queued.push(
        (
          await http()
            .post('/api/process')
            .send({ data: `queued-${i}`, delayMs: 0 })
            .expect(202)
        ).body.id,
      );
    }
    expect(await Promise.all(queued.map(statusOf))).toEqual(Array(10).fill('Queued'));
  });

  it('reports down on GET /health at the first check after Redis stops, on both apps', async () => {
    await server!.stop();
    for (const app of [api!, worker!]) {
      const started = performance.now();
      const { body } = await request(app.getHttpServer()).get('/health').expect(503);
      expect(body).toMatchObject({
        status: 'error',
        error: {
          'async-endpoints': { status: 'down', store: 'redis', message: expect.stringContaining('unreachable') },
        },
      });
      console.log(`redis-outage: /health down (503) in ${Math.round(performance.now() - started)} ms`);
    }
  });

  it('answers submits with 503 problem+json and Retry-After within 2 s while Redis is down, never 500', async () => {
    const submit = async () => {
      const started = performance.now();
      const response = await http().post('/api/process').send({ data: 'during the outage' });
      return { response, ms: performance.now() - started };
    };
    // One after the other, then twenty at once.
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await submit());
    answers.push(...(await Promise.all(Array.from({ length: 20 }, submit))));
    for (const { response } of answers) {
      expect(response.status).toBe(503);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.headers['retry-after']).toBe('1');
      // Refused before it reached Redis: the client may simply retry.
      expect(response.body).toMatchObject({
        status: 503,
        title: 'Service Unavailable',
        detail: expect.stringContaining('nothing was changed'),
      });
    }
    const latencies = answers.map(({ ms }) => ms);
    expect(Math.max(...latencies)).toBeLessThan(SUBMIT_DEADLINE_MS);
    console.log(
      `redis-outage: 503 on submit in ${Math.round(Math.min(...latencies))}..${Math.round(Math.max(...latencies))} ms ` +
        `(first ${Math.round(latencies[0]!)} ms, ${answers.length} submits)`,
    );
  });

  it('answers status reads and cancels with 503 too', async () => {
    for (const call of [http().get(`/jobs/${queued[0]}`), http().delete(`/jobs/${queued[0]}`)]) {
      const started = performance.now();
      const response = await call;
      expect(response.status).toBe(503);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.headers['retry-after']).toBe('1');
      expect(response.body.detail).toContain('nothing was changed');
      expect(performance.now() - started).toBeLessThan(SUBMIT_DEADLINE_MS);
    }
  });

  it('lets the running handlers finish in the outage while the worker loop keeps going', async () => {
    const workerHealth = async () =>
      (await request(worker!.getHttpServer()).get('/health').expect(503)).body.error['async-endpoints'];
    // The handlers end; their results cannot be written now.
    const idle = await waitFor(
      async () => {
        const health = await workerHealth();
        return health.worker.active === 0 ? health : undefined;
      },
      5000,
      50,
    );
    // The claim loop goes on round (its claims failing and backing off), and never counts as stalled.
    await waitFor(
      async () => {
        const health = await workerHealth();
        expect(health.worker.stalled).toBe(false);
        return Date.parse(health.worker.lastLoopAt) > Date.parse(idle.worker.lastLoopAt) ? true : undefined;
      },
      5000,
      100,
    );
  });

  it('is healthy again once Redis is back, without restarting anything', async () => {
    await server!.start();
    const started = performance.now();
    for (const app of [api!, worker!]) {
      await waitFor(
        async () => ((await request(app.getHttpServer()).get('/health')).status === 200 ? true : undefined),
        15_000,
        50,
      );
    }
    console.log(`redis-outage: /health up again ${Math.round(performance.now() - started)} ms after Redis restarted`);
    const { body } = await request(worker!.getHttpServer()).get('/health').expect(200);
    expect(body.info['async-endpoints']).toMatchObject({ status: 'up', worker: { enabled: true, stalled: false } });
  });

  it('completes every job queued before the outage, and the ones cut off in it', async () => {
    const started = performance.now();
    for (const id of [...queued, ...slow]) {
      const done = await waitFor(
        async () => {
          const { body } = await http().get(`/jobs/${id}`).expect(200);
          return ['Completed', 'Failed', 'Canceled'].includes(body.status) ? body : undefined;
        },
        20_000,
        20,
      );
      expect(done).toMatchObject({
        status: 'Completed',
        result: { processed: expect.stringMatching(/^(SLOW|QUEUED)-\d$/) },
      });
    }
    // The slow ones ran again: their first results were lost with Redis, recovery took them back.
    const store = api!.get(JobStore);
    // And the submits refused in the outage stored nothing.
    expect(total((await store.stats(Date.now())).counts)).toBe(queued.length + slow.length);
    expect(await Promise.all(slow.map(async (id) => (await store.getJob(id))!.recoveryCount))).toEqual([1, 1]);
    expect(await Promise.all(queued.map(async (id) => (await store.getJob(id))!.recoveryCount))).toEqual(
      Array(10).fill(0),
    );
    console.log(
      `redis-outage: all ${queued.length + slow.length} jobs Completed ${Math.round(performance.now() - started)} ms after health was up`,
    );
  });

  it('takes new jobs again', async () => {
    const submitted = await http().post('/api/process').send({ data: 'after', delayMs: 0 }).expect(202);
    const done = await waitFor(async () => {
      const { body } = await http().get(submitted.headers.location!).expect(200);
      return body.status === 'Completed' ? body : undefined;
    });
    expect(done.result).toEqual({ processed: 'AFTER', length: 5 });
    console.log(
      `redis-outage: a new job started ${Date.parse(done.startedAt) - Date.parse(done.createdAt)} ms after its submit`,
    );
  });

  it('answers 503 to a hung Redis (SIGSTOP) within the 1.5 s command timeout plus 1 s slack, saying a retry with the same Idempotency-Key is safe: the retries find one job per key', async () => {
    const store = api!.get(JobStore);
    const jobsBefore = total((await store.stats(Date.now())).counts);
    const keys = Array.from({ length: 5 }, () => randomUUID());
    server!.pause();
    try {
      const answers = await Promise.all(
        keys.map(async (key) => {
          const started = performance.now();
          const response = await http()
            .post('/api/process')
            .set('Idempotency-Key', key)
            .send({ data: 'hung', delayMs: 0 });
          return { response, ms: performance.now() - started };
        }),
      );
      for (const { response, ms } of answers) {
        expect(response.status).toBe(503);
        expect(response.headers['retry-after']).toBe('1');
        // The command reached Redis and runs once it wakes: nobody can say nothing was stored.
        expect(response.body.detail).toContain('may or may not have taken effect');
        expect(response.body.detail).toContain('Idempotency-Key');
        expect(ms).toBeLessThan(COMMAND_TIMEOUT_MS + HUNG_SLACK_MS);
      }
      expect(COMMAND_TIMEOUT_MS).toBeLessThanOrEqual(SUBMIT_DEADLINE_MS - 500);
      console.log(
        `redis-outage: 503 on submit to a hung Redis in ${Math.round(Math.max(...answers.map((a) => a.ms)))} ms`,
      );
      await request(api!.getHttpServer()).get('/health').expect(503);
    } finally {
      server!.resume();
    }
    // The retries find the jobs the timed-out submits created after all: one job per key.
    const retried = await Promise.all(
      keys.map(async (key) => {
        const response = await waitFor(
          async () => {
            const answer = await http()
              .post('/api/process')
              .set('Idempotency-Key', key)
              .send({ data: 'hung', delayMs: 0 });
            return answer.status === 503 ? undefined : answer;
          },
          10_000,
          50,
        );
        expect(response.status).toBe(202);
        return response.body.id as string;
      }),
    );
    expect(new Set(retried).size).toBe(keys.length);
    expect(total((await store.stats(Date.now())).counts)).toBe(jobsBefore + keys.length);
  });
});

function total(counts: Record<string, number>): number {
  return Object.values(counts).reduce((sum, count) => sum + count, 0);
}
