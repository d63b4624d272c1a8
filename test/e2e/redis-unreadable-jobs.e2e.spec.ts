import { randomUUID } from 'node:crypto';
import { Injectable, type INestApplication } from '@nestjs/common';
import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import { Redis } from 'ioredis';
import request from 'supertest';
import {
  AsyncHandler,
  JobStore,
  type AsyncContext,
  type AsyncEndpointHandler,
  type JsonValue,
  type RedisStoreConfig,
} from '../../lib/index.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { waitFor } from '../support/sample-app.js';
import { startTestApp } from '../support/test-app.js';
import { PLATFORMS } from '../support/test-platforms.js';
import { TestStores } from '../support/test-stores.js';

class CollectingReader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}

  async counter(name: string, attributes: Record<string, unknown>): Promise<number> {
    const { resourceMetrics } = await this.collect();
    const metric = resourceMetrics.scopeMetrics
      .filter((scope) => scope.scope.name === 'AsyncEndpoints')
      .flatMap((scope) => scope.metrics)
      .find((m: MetricData) => m.descriptor.name === name);
    return (metric?.dataPoints ?? [])
      .filter((point) => Object.entries(attributes).every(([key, value]) => point.attributes[key] === value))
      .reduce((total, point) => total + (point.value as number), 0);
  }
}

/** Answers the depth of the nested arrays it is given. */
@AsyncHandler('Depth')
@Injectable()
class DepthHandler implements AsyncEndpointHandler<JsonValue> {
  handle({ request: payload }: AsyncContext<JsonValue>) {
    let depth = 0;
    for (let value = payload; Array.isArray(value); value = value[0] as JsonValue) depth++;
    return { depth };
  }
}

/**
 * What the Redis store does with jobs its Lua scripts once could not read, end to end: a payload nested
 * past cjson's 1,000 levels runs like any other, and a job hash changed outside the store is failed
 * visibly instead of staying Queued forever.
 */
describe.each(PLATFORMS)('Jobs the Redis scripts cannot parse (%s)', (platform) => {
  const stores = new TestStores('redis');
  const reader = new CollectingReader();
  const logger = new RecordingLogger();
  let api: INestApplication | undefined;
  let worker: INestApplication | undefined;
  let admin: Redis;
  let store: RedisStoreConfig;

  beforeAll(async () => {
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
    store = (await stores.options()) as RedisStoreConfig;
    admin = new Redis(store.url!);
    api = await startTestApp({ store, worker: { enabled: false } }, { platform });
  });

  // Each test stores its job before a worker runs, so that nothing claims it before the test is ready.
  afterEach(async () => {
    await worker?.close();
    worker = undefined;
  });

  afterAll(async () => {
    await api?.close();
    await admin?.quit();
    await stores.dispose();
    metrics.disable();
  });

  /** A job stored through the store API, as the HTTP layer stores one (its JSON limits are not under test). */
  async function storeJob(id: string, payload: JsonValue): Promise<void> {
    const result = await api!.get(JobStore).createJob(
      {
        id,
        name: 'Depth',
        payload,
        headers: {},
        routeParams: {},
        queryParams: {},
        owner: null,
        idempotencyKey: null,
        fingerprint: '',
        traceContext: null,
        maxRetries: 0,
      },
      { now: Date.now(), maximumQueueSize: 100 },
    );
    expect(result.outcome).toBe('created');
  }

  const startWorker = async () => {
    worker = await startTestApp(
      { store, http: { jobsPath: false } },
      { providers: [DepthHandler], platform, configure: (app) => app.useLogger(logger) },
    );
  };

  // A job hash that cannot be read answers 404 until the claim has failed it.
  const finished = (id: string) =>
    waitFor(async () => {
      const { status, body } = await request(api!.getHttpServer()).get(`/jobs/${id}`);
      return status === 200 && (body.status === 'Completed' || body.status === 'Failed') ? (body as object) : undefined;
    });

  it('runs a job whose payload is nested 1,001 deep, and GET shows it Completed', async () => {
    const id = randomUUID();
    await storeJob(id, JSON.parse(`${'['.repeat(1001)}${']'.repeat(1001)}`) as JsonValue);
    await startWorker();

    expect(await finished(id)).toMatchObject({ status: 'Completed', result: { depth: 1001 } });
  });

  it('fails a job whose hash lost its name: GET shows Failed with JOB_UNREADABLE, DELETE answers 409, counted Failed not Queued, logged, metered', async () => {
    const id = randomUUID();
    await storeJob(id, [1]);
    await admin.hdel(`${store.keyPrefix}:job:${id}`, 'name');
    const failedBefore = await reader.counter('asyncendpoints.jobs.failed', { 'error.code': 'JOB_UNREADABLE' });
    await startWorker();

    expect(await finished(id)).toMatchObject({ status: 'Failed', error: { code: 'JOB_UNREADABLE' } });
    const http = request(api!.getHttpServer());
    const deleted = await http.delete(`/jobs/${id}`).expect(409);
    expect(deleted.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(await admin.pttl(`${store.keyPrefix}:job:${id}`)).toBeGreaterThan(0);
    expect((await api!.get(JobStore).stats(Date.now())).counts).toMatchObject({ Queued: 0, Failed: 1 });
    expect(logger.messages('error').join('\n')).toContain(
      `Job ${id} cannot be read from Redis (field 'name' is missing)`,
    );
    expect(await reader.counter('asyncendpoints.jobs.failed', { 'error.code': 'JOB_UNREADABLE' })).toBe(
      failedBefore + 1,
    );
  });
});
