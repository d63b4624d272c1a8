import { readFileSync } from 'node:fs';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { JobStore } from '../../lib/index.js';
import { RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/sample-app.js';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const FIXTURE = readFileSync(new URL('../support/readme-example.ts', import.meta.url), 'utf8');

/** The README's "Use it" example is real: it is this fixture, and it validates, stores and runs jobs. */
describe('README "Use it" example', () => {
  let redis: RedisServer;
  let app: INestApplication;

  beforeAll(async () => {
    redis = await RedisServer.start();
    // The example reads REDIS_URL when its module is declared: set it before the import.
    process.env.REDIS_URL = redis.url;
    const { AppModule } = await import('../support/readme-example.js');
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    app = moduleRef.createNestApplication({ logger: ['error'] });
    await app.listen(0, '127.0.0.1');
  });
  afterAll(async () => {
    await app?.close();
    await redis?.dispose();
    delete process.env.REDIS_URL;
  });

  it('is the code of test/support/readme-example.ts, imported from the package name', () => {
    const block = /## Use it\n\n```ts\n([\s\S]*?)```\n/.exec(README)?.[1];
    expect(block?.replace("from 'nestjs-async-endpoints';", "from '../../lib/index.js';")).toBe(FIXTURE);
  });

  it('answers an invalid body 400 problem+json and stores nothing', async () => {
    const response = await request(app.getHttpServer()).post('/api/process').send({ data: '' }).expect(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.body.errors).toEqual([expect.stringContaining('data must be longer')]);
    const extra = await request(app.getHttpServer()).post('/api/process').send({ data: 'x', admin: true }).expect(400);
    expect(extra.body.errors).toEqual([expect.stringContaining('property admin should not exist')]);
    expect((await app.get(JobStore).stats(Date.now())).waiting).toBe(0);
  });

  it("accepts a valid body with 202 and runs the job to Completed with the handler's result", async () => {
    const submitted = await request(app.getHttpServer()).post('/api/process').send({ data: 'hello' }).expect(202);
    const done = await waitFor(async () => {
      const { body } = await request(app.getHttpServer()).get(submitted.headers.location!).expect(200);
      return body.status === 'Completed' ? body : undefined;
    });
    expect(done).toMatchObject({ result: { processed: 'HELLO' }, progress: 50 });
  });
});
