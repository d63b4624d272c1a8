import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import request from 'supertest';
import type { RedisStoreConfig } from '../../lib/index.js';
import { startSampleApp, waitFor } from '../support/sample-app.js';
import { TestStores } from '../support/test-stores.js';

/**
 * A queue entry whose job hash is gone (deleted by hand, evicted) or unreadable must not block the
 * jobs behind it: end to end, through the HTTP API and a worker, not the store alone.
 */
describe('A broken queue entry at the head of the Redis queue', () => {
  const stores = new TestStores('redis');
  const apps: INestApplication[] = [];
  let admin: Redis | undefined;

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(async () => {
    await admin?.quit();
    await stores.dispose();
  });

  const breakings: [string, (redis: Redis, key: string) => Promise<unknown>][] = [
    ['deleted', (redis, key) => redis.del(key)],
    ['overwritten with a string', (redis, key) => redis.set(key, 'not a job')],
  ];

  it.each(breakings)('does not block the jobs behind it when its hash is %s', async (_how, breakJob) => {
    const store = (await stores.options()) as RedisStoreConfig;
    admin ??= new Redis(store.url!);
    // An API-only process queues the jobs; no worker runs yet.
    const api = await startSampleApp({ store, worker: { enabled: false } });
    apps.push(api);
    const http = request(api.getHttpServer());
    const submit = async (data: string) =>
      (await http.post('/api/process').send({ data, delayMs: 0 }).expect(202)).body.id as string;

    const broken = await submit('broken');
    const before: string[] = [];
    for (let i = 0; i < 5; i++) before.push(await submit(`before-${i}`));
    await breakJob(admin, `${store.keyPrefix}:job:${broken}`);
    const [head] = await admin.zrange(`${store.keyPrefix}:waiting:Process`, '0', '0');
    expect(head).toMatch(new RegExp(`:${broken}$`));

    // A worker process (recovery off: the claim itself must get past the entry), then more jobs.
    apps.push(
      await startSampleApp({
        store,
        worker: { maximumConcurrency: 2, batchSize: 3 },
        recovery: { enableDistributedJobRecovery: false },
      }),
    );
    const after: string[] = [];
    for (let i = 0; i < 5; i++) after.push(await submit(`after-${i}`));

    for (const id of [...before, ...after]) {
      const done = await waitFor(
        async () => {
          const { body } = await http.get(`/jobs/${id}`).expect(200);
          return body.status === 'Completed' ? body : undefined;
        },
        10_000,
        10,
      );
      expect(done.result).toMatchObject({ processed: expect.stringMatching(/^(BEFORE|AFTER)-\d$/) });
    }
    await http.get(`/jobs/${broken}`).expect(404);
    expect(await admin.zcard(`${store.keyPrefix}:waiting:Process`)).toBe(0);
    const { body: health } = await http.get('/health').expect(200);
    expect(health.info['async-endpoints']).toMatchObject({ waiting: 0, inProgress: 0 });
  });
});
