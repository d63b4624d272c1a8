import { jest } from '@jest/globals';
import { Body, Controller, Injectable, Logger, Post, type INestApplication } from '@nestjs/common';
import request from 'supertest';
import {
  AsyncEndpoint,
  AsyncEndpointsHealthIndicator,
  AsyncHandler,
  MemoryJobStore,
  type AsyncEndpointHandler,
} from '../../lib/index.js';
import { waitFor } from '../support/sample-app.js';
import { startTestApp } from '../support/test-app.js';
import { PLATFORMS } from '../support/test-platforms.js';

@AsyncHandler('Light')
@Injectable()
class LightHandler implements AsyncEndpointHandler {
  handle() {
    return { ran: 'Light' };
  }
}

@AsyncHandler('Heavy')
@Injectable()
class HeavyHandler implements AsyncEndpointHandler {
  handle() {
    return { ran: 'Heavy' };
  }
}

@Controller()
class RoutedController {
  @Post('light')
  @AsyncEndpoint('Light')
  light(@Body() _body: unknown) {}

  @Post('heavy')
  @AsyncEndpoint('Heavy')
  heavy(@Body() _body: unknown) {}
}

/** Health answers its details beside `status`. */
interface HealthDetails {
  status: string;
  names: Record<string, { waiting: number; inProgress: number; oldestWaitingAgeMs: number | null; workers: number }>;
  unhandled: string[];
}

const UNHANDLED_AFTER_MS = 500;

describe.each(PLATFORMS)('Routing by name: a worker without the handler (%s)', (platform) => {
  // One store for the API's app and for a worker app started later, as processes share Redis.
  const store = new MemoryJobStore();
  let api: INestApplication;
  let heavyWorker: INestApplication | undefined;
  const warnings: string[] = [];

  beforeAll(async () => {
    jest.spyOn(Logger.prototype, 'warn').mockImplementation((message: unknown) => {
      warnings.push(String(message));
    });
    // The API's own worker runs Light only: Heavy has no handler in this process.
    api = await startTestApp(
      { store, health: { unhandledJobsAfterMs: UNHANDLED_AFTER_MS } },
      { controllers: [RoutedController], providers: [LightHandler], platform },
    );
  });

  afterAll(async () => {
    await heavyWorker?.close();
    await api?.close();
    await store.close();
    jest.restoreAllMocks();
  });

  const health = async () =>
    (await api.get(AsyncEndpointsHealthIndicator).isHealthy())['async-endpoints'] as unknown as HealthDetails;
  const statusOf = async (id: string) => (await request(api.getHttpServer()).get(`/jobs/${id}`).expect(200)).body;

  it('queues a job nobody handles (202, Queued, never Failed) and health names it unhandled after the threshold, staying up', async () => {
    const heavy = await request(api.getHttpServer()).post('/heavy').send({}).expect(202);
    const submittedAt = Date.now();
    expect(heavy.body).toMatchObject({ name: 'Heavy', status: 'Queued' });
    const light = await request(api.getHttpServer()).post('/light').send({}).expect(202);
    await waitFor(async () => ((await statusOf(light.body.id)).status === 'Completed' ? true : undefined));
    expect(await statusOf(heavy.body.id)).toMatchObject({
      status: 'Queued',
      retryCount: 0,
      startedAt: null,
      error: null,
    });

    const early = await health();
    if (Date.now() - submittedAt < UNHANDLED_AFTER_MS) expect(early.unhandled).toEqual([]);
    expect(early.names.Heavy).toMatchObject({ waiting: 1, inProgress: 0, workers: 0 });
    expect(early.names.Light).toMatchObject({ waiting: 0, workers: 1 });

    const late = await waitFor(async () => {
      const details = await health();
      return details.unhandled.length > 0 ? details : undefined;
    });
    expect(late).toMatchObject({ status: 'up', unhandled: ['Heavy'] });
    expect(late.names.Heavy!.oldestWaitingAgeMs).toBeGreaterThanOrEqual(UNHANDLED_AFTER_MS);
    await health();
    expect(warnings.filter((message) => message.includes("no worker registers a handler for 'Heavy'"))).toHaveLength(1);
    expect(await statusOf(heavy.body.id)).toMatchObject({
      status: 'Queued',
      retryCount: 0,
      startedAt: null,
      error: null,
    });
  });

  it('runs the waiting job once a worker with the handler starts, and counts that worker until it stops', async () => {
    const waiting = await request(api.getHttpServer()).post('/heavy').send({}).expect(202);
    heavyWorker = await startTestApp({ store, http: { jobsPath: false } }, { providers: [HeavyHandler], platform });
    const done = await waitFor(async () => {
      const job = await statusOf(waiting.body.id);
      return job.status === 'Completed' ? job : undefined;
    });
    expect(done).toMatchObject({ result: { ran: 'Heavy' } });
    const running = await health();
    expect(running.unhandled).toEqual([]);
    expect(running.names.Heavy).toMatchObject({ waiting: 0, workers: 1 });
    expect(running.names.Light).toMatchObject({ workers: 1 });

    await heavyWorker.close();
    heavyWorker = undefined;
    expect((await health()).names.Heavy?.workers ?? 0).toBe(0);
  });
});
