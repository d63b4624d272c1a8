import { randomUUID } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import request from 'supertest';
import { RedisJobStore } from '../../lib/index.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { RedisServer } from '../support/redis-server.js';
import { startSampleApp, waitFor } from '../support/sample-app.js';
import { PLATFORMS } from '../support/test-platforms.js';

const WAIT_MS = 200;

/**
 * store.waitForReplicas on a real master and replica (redis-server --replicaof): a submit is answered
 * 202 once the replica holds its job, and 503 (saying why) when the replica does not confirm it.
 */
describe.each(PLATFORMS)('store.waitForReplicas on a master and its replica (%s)', (platform) => {
  let master: RedisServer;
  let replica: RedisServer;
  let replicaClient: Redis;
  let masterClient: Redis;
  let firstId: string;
  let app: INestApplication | undefined;
  let store: RedisJobStore | undefined;
  const logger = new RecordingLogger();
  const keyPrefix = `{ae-wait-${randomUUID()}}`;
  const http = () => request(app!.getHttpServer());

  beforeAll(async () => {
    master = await RedisServer.start();
    replica = await RedisServer.start(['--replicaof', '127.0.0.1', String(master.port)]);
    replicaClient = new Redis(replica.url, { maxRetriesPerRequest: 0, lazyConnect: true });
    replicaClient.on('error', () => undefined);
    masterClient = new Redis(master.url, { maxRetriesPerRequest: 0 });
    await waitFor(async () =>
      (await replicaClient.info('replication')).includes('master_link_status:up') ? true : undefined,
    );
    store = new RedisJobStore({
      url: master.url,
      keyPrefix,
      waitForReplicas: { replicas: 1, timeoutMs: WAIT_MS },
      logger,
    });
    app = await startSampleApp({ store, worker: { maximumConcurrency: 2 } }, undefined, platform);
  });

  afterAll(async () => {
    await app?.close();
    // A store handed to the module is the application's to close.
    await store?.close();
    replicaClient?.disconnect();
    masterClient?.disconnect();
    await replica?.dispose();
    await master?.dispose();
  });

  it('answers 202 once the replica holds the job, and the job completes', async () => {
    const { body } = await http().post('/api/process').send({ data: 'replicated', delayMs: 0 }).expect(202);
    firstId = body.id;
    expect(await replicaClient.exists(`${keyPrefix}:job:${body.id}`)).toBe(1);
    await waitFor(async () => ((await http().get(`/jobs/${body.id}`)).body.status === 'Completed' ? true : undefined));
  });

  it('answers 503 problem+json naming store.waitForReplicas while the replica is stopped, and keeps the job on the master', async () => {
    await replica.stop();
    const started = Date.now();
    const response = await http().post('/api/process').send({ data: 'unconfirmed', delayMs: 0 });
    const elapsedMs = Date.now() - started;
    expect(response.status).toBe(503);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.body.detail).toContain(
      `The job was stored on the Redis master but not confirmed on 1 replica(s) within ${WAIT_MS} ms (store.waitForReplicas)`,
    );
    // Answered by WAIT's own timeout, not by the 2 s store deadline.
    expect(elapsedMs).toBeLessThan(2000);
    const warnings = logger.messages('warn').filter((message) => message.includes('store.waitForReplicas'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('only 0 of 1 replica(s) confirmed the write within 200 ms');

    // The job is on the master, and a worker runs it (its writes go on unconfirmed, logged only once).
    const keys = await masterClient.keys(`${keyPrefix}:job:*`);
    const unconfirmed = keys.map((key) => key.slice(`${keyPrefix}:job:`.length)).filter((id) => id !== firstId);
    expect(unconfirmed).toHaveLength(1);
    await waitFor(async () =>
      (await http().get(`/jobs/${unconfirmed[0]}`)).body.status === 'Completed' ? true : undefined,
    );
    // Meanwhile submits are refused before they write: no WAIT holds the connection for each of them.
    const refused = await http().post('/api/process').send({ data: 'refused', delayMs: 0 }).expect(503);
    expect(refused.body.detail).toContain('(store.waitForReplicas), so the job was not stored');
    expect(await masterClient.keys(`${keyPrefix}:job:*`)).toHaveLength(2);
    expect(logger.messages('warn').filter((message) => message.includes('store.waitForReplicas'))).toHaveLength(1);
  });

  it('answers 202 again within about a second once the replica is back, and says so in the log', async () => {
    await replica.start();
    await waitFor(async () =>
      (await replicaClient.info('replication')).includes('master_link_status:up') ? true : undefined,
    );
    // The first submit a second after the last refusal waits for the replicas again.
    await waitFor(async () =>
      (await http().post('/api/process').send({ data: 'back', delayMs: 0 })).status === 202 ? true : undefined,
    );
    expect(logger.messages('log')).toContain('Redis replicas confirm writes again (store.waitForReplicas: 1).');
  });
});
