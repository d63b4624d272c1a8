import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jest } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import {
  AsyncEndpointsService,
  JobStore,
  type AsyncEndpointsModuleOptions,
  type RedisStoreConfig,
} from '../../lib/index.js';
import { startSampleApp, waitFor } from '../support/sample-app.js';
import { PLATFORMS, PLATFORMS_AND_STORES } from '../support/test-platforms.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { TestStores } from '../support/test-stores.js';

const UNKNOWN_ID = '3f0c2a8e-5b7d-4c1e-9a2b-1d2e3f4a5b6c';

describe.each(PLATFORMS_AND_STORES)('Long-poll: GET /jobs/:id?waitSeconds=N (%s, %s store)', (platform, kind) => {
  const stores = new TestStores(kind);
  const apps: INestApplication[] = [];

  /** A sample app on this platform and a fresh store; closed after each test. */
  async function start(options: AsyncEndpointsModuleOptions = {}) {
    const app = await startSampleApp({ store: await stores.options(), ...options }, undefined, platform);
    apps.push(app);
    return { app, http: () => request(app.getHttpServer()), store: app.get(JobStore) };
  }

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(() => stores.dispose());

  it('answers as soon as the job is terminal, reading the store once before and once after', async () => {
    const { http, store } = await start({ worker: { maximumConcurrency: 2 } });
    const submitted = await http().post('/api/process').send({ data: 'wait for me', delayMs: 300 }).expect(202);
    const reads = jest.spyOn(store, 'getJob');
    const started = Date.now();
    const answer = await http().get(`${submitted.headers.location}?waitSeconds=10`).expect(200);
    const elapsed = Date.now() - started;
    expect(answer.body).toMatchObject({ status: 'Completed', result: { processed: 'WAIT FOR ME' } });
    expect(answer.headers).not.toHaveProperty('retry-after');
    // It waited for the job (Completed, two reads: before and after the wake-up), not for the deadline.
    expect(elapsed).toBeLessThan(2_000);
    expect(reads.mock.calls.filter(([id]) => id === submitted.body.id).length).toBe(2);
  });

  it('answers with the pending document when N seconds pass, without polling the store meanwhile', async () => {
    const { app, http, store } = await start({ worker: { enabled: false }, http: { pendingStatusCode: 202 } });
    const submitted = await http().post('/api/process').send({ data: 'never runs' }).expect(202);
    const reads = jest.spyOn(store, 'getJob');
    const started = Date.now();
    const answer = await http().get(`${submitted.headers.location}?waitSeconds=1`).expect(202);
    const elapsed = Date.now() - started;
    expect(answer.body.status).toBe('Queued');
    expect(answer.headers.location).toBe(submitted.headers.location);
    expect(answer.headers['retry-after']).toBe('1');
    expect(elapsed).toBeGreaterThanOrEqual(990);
    expect(elapsed).toBeLessThan(1_800);
    expect(reads).toHaveBeenCalledTimes(2);
    expect(app.get(AsyncEndpointsService).waitingCount).toBe(0);
  });

  it('is there for code: AsyncEndpointsService.waitForTerminal', async () => {
    const { app, http } = await start({
      worker: { enabled: false },
      jobOwner: (req) => req.headers['x-user-id'] as string,
    });
    const service = app.get(AsyncEndpointsService);
    const submitted = await http().post('/api/process').set('X-User-Id', 'alice').send({ data: 'x' }).expect(202);
    const waiting = service.waitForTerminal(submitted.body.id, { owner: 'alice', timeoutMs: 5_000 });
    await waitFor(async () => (service.waitingCount === 1 ? true : undefined), 2_000, 5);
    await service.cancel(submitted.body.id, { owner: 'alice' });
    expect(await waiting).toMatchObject({ id: submitted.body.id, status: 'Canceled' });
    expect(await service.waitForTerminal(submitted.body.id, { owner: 'bob', timeoutMs: 5_000 })).toBeNull();
  });

  it('answers at once for waitSeconds=0, a terminal job, or an unknown id', async () => {
    const { http } = await start({ worker: { enabled: false } });
    const submitted = await http().post('/api/process').send({ data: 'x' }).expect(202);
    const timed = async (path: string, status: number) => {
      const started = Date.now();
      await http().get(path).expect(status);
      return Date.now() - started;
    };
    expect(await timed(`${submitted.headers.location}?waitSeconds=0`, 200)).toBeLessThan(500);
    await http().delete(submitted.headers.location!).expect(200);
    expect(await timed(`${submitted.headers.location}?waitSeconds=30`, 200)).toBeLessThan(500);
    expect(await timed(`/jobs/${UNKNOWN_ID}?waitSeconds=30`, 404)).toBeLessThan(500);
  });

  it('answers 400 to a waitSeconds that is not a whole number from 0 to 30', async () => {
    const { http } = await start({ worker: { enabled: false } });
    for (const query of ['abc', '31', '-1', '1.5', '', '1e1', '%201']
      .map((value) => `waitSeconds=${value}`)
      .concat('waitSeconds=1&waitSeconds=2')) {
      const answer = await http().get(`/jobs/${UNKNOWN_ID}?${query}`).expect(400);
      expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(answer.body.detail).toContain('waitSeconds must be a whole number of seconds from 0 to 30');
    }
  });

  it('does not miss a finish between its read and its wait (it subscribes first)', async () => {
    const { app, http, store } = await start({ worker: { enabled: false } });
    const submitted = await http().post('/api/process').send({ data: 'x' }).expect(202);
    const read = store.getJob.bind(store);
    // The job is canceled (terminal) right after the long-poll read it as Queued.
    jest.spyOn(store, 'getJob').mockImplementationOnce(async (id) => {
      const job = await read(id);
      await app.get(AsyncEndpointsService).cancel(id);
      return job;
    });
    const started = Date.now();
    const answer = await http().get(`${submitted.headers.location}?waitSeconds=5`).expect(200);
    expect(answer.body.status).toBe('Canceled');
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('stops waiting and releases its subscription and timer when the client goes away', async () => {
    const { app, http } = await start({ worker: { enabled: false } });
    const service = app.get(AsyncEndpointsService);
    const submitted = await http().post('/api/process').send({ data: 'x' }).expect(202);
    const { port } = app.getHttpServer().address() as AddressInfo;
    const client = httpRequest({ host: '127.0.0.1', port, path: `${submitted.headers.location}?waitSeconds=30` });
    client.on('error', () => undefined);
    client.end();
    await waitFor(async () => (service.waitingCount === 1 ? true : undefined), 5_000, 5);
    client.destroy();
    await waitFor(async () => (service.waitingCount === 0 ? true : undefined), 2_000, 5);
  });

  it('answers pending long-polls at once when the app shuts down', async () => {
    const { app, http } = await start({ worker: { enabled: false } });
    const submitted = await http().post('/api/process').send({ data: 'x' }).expect(202);
    const started = Date.now();
    const answer = http()
      .get(`${submitted.headers.location}?waitSeconds=30`)
      .then((response) => response);
    await waitFor(async () => (app.get(AsyncEndpointsService).waitingCount === 1 ? true : undefined), 5_000, 5);
    await app.close();
    apps.splice(apps.indexOf(app), 1);
    expect((await answer).status).toBe(200);
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});

describe.each(PLATFORMS)('Long-poll across instances on Redis (%s API app)', (platform) => {
  const stores = new TestStores('redis');
  let api: INestApplication;
  let worker: INestApplication;

  beforeAll(async () => {
    // One store (same key prefix) for both: an API-only app and a worker app.
    const store = (await stores.options()) as RedisStoreConfig;
    api = await startSampleApp({ store, worker: { enabled: false } }, undefined, platform);
    // A job submitted in the first milliseconds after a Redis worker boots may wait for its idle poll
    // (its SUBSCRIBE is still under way); a short poll keeps this test about the API app's wake-up.
    worker = await startSampleApp({ store, worker: { maximumConcurrency: 2, pollingIntervalMs: 200 } });
  });
  afterAll(async () => {
    await api?.close();
    await worker?.close();
    await stores.dispose();
  });

  it('wakes the API app when the worker app finishes the job, with two store reads', async () => {
    const http = () => request(api.getHttpServer());
    const reads = jest.spyOn(api.get(JobStore), 'getJob');
    for (const delayMs of [300, 300]) {
      reads.mockClear();
      const submitted = await http().post('/api/process').send({ data: 'elsewhere', delayMs }).expect(202);
      const started = Date.now();
      const answer = await http().get(`${submitted.headers.location}?waitSeconds=20`).expect(200);
      const elapsed = Date.now() - started;
      expect(answer.body).toMatchObject({ status: 'Completed', result: { processed: 'ELSEWHERE' } });
      expect(elapsed).toBeLessThan(delayMs + 1_500);
      expect(reads).toHaveBeenCalledTimes(2);
    }
    expect(api.get(AsyncEndpointsService).waitingCount).toBe(0);
  });
});

describe.each(PLATFORMS)('Long-poll cap: http.maxLongPolls (%s)', (platform) => {
  let app: INestApplication | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('answers a long-poll beyond the cap at once with the current document and Retry-After, warns once naming the option, and admits one again once a slot frees', async () => {
    const logger = new RecordingLogger();
    app = await startSampleApp(
      { worker: { enabled: false }, http: { maxLongPolls: 2, pendingStatusCode: 202 } },
      (created) => created.useLogger(logger),
      platform,
    );
    const service = app.get(AsyncEndpointsService);
    const http = () => request(app!.getHttpServer());
    const submitted = await http().post('/api/process').send({ data: 'x' }).expect(202);
    const longPoll = () =>
      http()
        .get(`${submitted.headers.location}?waitSeconds=30`)
        .then((response) => response);

    const held = [longPoll(), longPoll()];
    await waitFor(async () => (service.waitingCount === 2 ? true : undefined), 5_000, 5);
    // The third either answers (capped) or joins the waits (uncapped): whichever comes first.
    const third = longPoll();
    const first = await Promise.race([
      third.then(() => 'answered'),
      waitFor(async () => (service.waitingCount > 2 ? 'waiting' : undefined), 10_000, 5),
    ]);
    expect(first).toBe('answered');
    const answer = await third;
    expect(answer.status).toBe(202);
    expect(answer.body).toMatchObject({ id: submitted.body.id, status: 'Queued' });
    expect(answer.headers['retry-after']).toBe('1');
    expect(answer.headers.location).toBe(submitted.headers.location);
    expect(service.waitingCount).toBe(2);
    expect((await longPoll()).body.status).toBe('Queued');
    const warnings = logger.messages('warn').filter((message) => message.includes('long-polls'));
    expect(warnings).toEqual([
      expect.stringMatching(/^2 long-polls .* the most http\.maxLongPolls allows: .* Raise http\.maxLongPolls/),
    ]);

    // The held long-polls end with the job; their slots free, and a new long-poll waits again.
    await http().delete(submitted.headers.location!).expect(200);
    for (const response of await Promise.all(held)) expect(response.body.status).toBe('Canceled');
    const next = await http().post('/api/process').send({ data: 'y' }).expect(202);
    const waiting = http()
      .get(`${next.headers.location}?waitSeconds=30`)
      .then((response) => response);
    await waitFor(async () => (service.waitingCount === 1 ? true : undefined), 5_000, 5);
    await http().delete(next.headers.location!).expect(200);
    expect((await waiting).body.status).toBe('Canceled');
  });

  it('does not wait for a client that left while a guard ran: its long-poll ends at once and holds no slot', async () => {
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    let entered = 0;
    let passed = 0;
    const slowGuard = {
      async canActivate(context: { switchToHttp(): { getRequest(): { url: string } } }) {
        if (!context.switchToHttp().getRequest().url.includes('waitSeconds')) return true;
        entered++;
        await gate;
        passed++;
        return true;
      },
    };
    app = await startSampleApp(
      { worker: { enabled: false }, http: { maxLongPolls: 1 } },
      (created) => created.useGlobalGuards(slowGuard),
      platform,
    );
    const service = app.get(AsyncEndpointsService);
    const { id } = await service.submit('Process', { data: 'x' });
    const { port } = app.getHttpServer().address() as AddressInfo;

    const client = httpRequest({ host: '127.0.0.1', port, path: `/jobs/${id}?waitSeconds=30`, agent: false });
    client.on('error', () => undefined);
    client.end();
    await waitFor(async () => (entered === 1 ? true : undefined), 5_000, 5);
    client.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    openGate();
    await waitFor(async () => (passed === 1 ? true : undefined), 5_000, 5);
    await new Promise((resolve) => setTimeout(resolve, 300));

    expect(service.waitingCount).toBe(0);
  });
});
