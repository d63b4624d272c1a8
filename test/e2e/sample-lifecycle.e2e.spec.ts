import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { startSampleApp, waitFor } from '../support/sample-app.js';
import { PLATFORMS_AND_STORES } from '../support/test-platforms.js';
import { TestStores } from '../support/test-stores.js';

describe.each(PLATFORMS_AND_STORES)('The sample end to end (%s, %s store, workers on)', (platform, kind) => {
  const stores = new TestStores(kind);
  let app: INestApplication;
  const http = () => request(app.getHttpServer());

  beforeAll(async () => {
    app = await startSampleApp(
      {
        store: await stores.options(),
        // Long enough that a poll lands in each Scheduled window (at least 250 ms with the jitter)
        // even on a loaded machine.
        jobManager: { retryDelayBaseSeconds: 0.5, maxRetryDelaySeconds: 1 },
        worker: { maximumConcurrency: 4 },
      },
      undefined,
      platform,
    );
  });
  afterAll(async () => {
    // Undefined when beforeAll failed; the Redis server goes all the same.
    await app?.close();
    await stores.dispose();
  });

  async function pollUntilTerminal(location: string, seen: Set<string> = new Set()) {
    return waitFor(
      async () => {
        const { body } = await http().get(location).expect(200);
        seen.add(body.status);
        return ['Completed', 'Failed', 'Canceled'].includes(body.status) ? body : undefined;
      },
      10_000,
      5,
    );
  }

  it('processes POST /api/process to Completed with the result', async () => {
    const submitted = await http().post('/api/process').send({ data: 'hello world', delayMs: 20 }).expect(202);
    const done = await pollUntilTerminal(submitted.headers.location!);
    expect(done).toMatchObject({
      status: 'Completed',
      result: { processed: 'HELLO WORLD', length: 11 },
      error: null,
      retryCount: 0,
      startedAt: expect.any(String),
      completedAt: expect.any(String),
    });
    expect(done.links).toEqual({ self: submitted.headers.location });
  });

  it('completes GenerateReport with its report and final progress', async () => {
    const submitted = await http().post('/api/generate-report').set('X-User-Id', 'u-42').expect(202);
    const done = await pollUntilTerminal(submitted.headers.location!);
    expect(done.status).toBe('Completed');
    expect(done.progress).toBe(100);
    expect(done.result).toMatchObject({ title: 'Orders by region', requestedBy: 'u-42', rows: expect.any(Array) });
  });

  it('retries Flaky with failTimes 2 and completes on attempt 3, each delay within the backoff bounds [d / 2, d]', async () => {
    const submitted = await http().post('/api/flaky').send({ failTimes: 2 }).expect(202);
    const delays = new Map<number, number>();
    const seen = new Set<string>();
    const done = await waitFor(
      async () => {
        const { body } = await http().get(submitted.headers.location!).expect(200);
        seen.add(body.status);
        if (body.status === 'Scheduled') {
          expect(body.error).toMatchObject({ code: 'FLAKY_FAILURE' });
          delays.set(body.retryCount, Date.parse(body.retryDelayUntil) - Date.parse(body.lastUpdatedAt));
        }
        return body.status === 'Completed' ? body : undefined;
      },
      10_000,
      2,
    );
    expect(seen.has('Scheduled')).toBe(true);
    expect(done).toMatchObject({ retryCount: 2, result: { succeededOnAttempt: 3 }, error: null });
    // retryDelayBaseSeconds 0.5: retry 1 after d = 500 ms, retry 2 after d = 1000 ms, each jittered to [d / 2, d].
    expect([...delays.keys()].sort()).toEqual([1, 2]);
    expect(delays.get(1)).toBeGreaterThanOrEqual(250);
    expect(delays.get(1)).toBeLessThanOrEqual(500);
    expect(delays.get(2)).toBeGreaterThanOrEqual(500);
    expect(delays.get(2)).toBeLessThanOrEqual(1000);
  });

  it('ends Flaky Failed with the error when failTimes exceeds maxRetries', async () => {
    const submitted = await http().post('/api/flaky').send({ failTimes: 5 }).expect(202);
    const done = await pollUntilTerminal(submitted.headers.location!);
    expect(done).toMatchObject({
      status: 'Failed',
      retryCount: 3,
      maxRetries: 3,
      result: null,
      error: { code: 'FLAKY_FAILURE', message: 'Attempt 4 fails on purpose (failTimes: 5)' },
    });
    expect(done.error).not.toHaveProperty('stack');
  });

  it('cancels a running job: its signal aborts and it ends Canceled; a second cancel is a 409', async () => {
    const submitted = await http().post('/api/process').send({ data: 'slow', delayMs: 60_000 }).expect(202);
    const location = submitted.headers.location!;
    await waitFor(async () => ((await http().get(location)).body.status === 'InProgress' ? true : undefined));
    const cancel = await http().delete(location).expect(202);
    expect(cancel.body.status).toBe('InProgress');
    const done = await pollUntilTerminal(location);
    expect(done.status).toBe('Canceled');
    const again = await http().delete(location).expect(409);
    expect(again.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it('answers 404 to a cancel of an unknown job', async () => {
    await http().delete('/jobs/3f0c2a8e-5b7d-4c1e-9a2b-1d2e3f4a5b6c').expect(404);
  });

  it('reports health up with counts and a live worker loop', async () => {
    const { body } = await http().get('/health').expect(200);
    expect(body.info['async-endpoints']).toMatchObject({
      status: 'up',
      store: kind,
      waiting: expect.any(Number),
      inProgress: expect.any(Number),
      pingMs: expect.any(Number),
      worker: { enabled: true, stalled: false },
    });
  });
});
