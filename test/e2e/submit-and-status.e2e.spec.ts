import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { JobStore } from '../../lib/index.js';
import { startSampleApp } from '../support/sample-app.js';
import { PLATFORMS_AND_STORES } from '../support/test-platforms.js';
import { TestStores } from '../support/test-stores.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe.each(PLATFORMS_AND_STORES)('Submit and status over HTTP (%s, %s store)', (platform, kind) => {
  const stores = new TestStores(kind);
  let app: INestApplication;
  let store: JobStore;
  const storedJobs = async () => (await store.stats(Date.now())).waiting;

  beforeAll(async () => {
    // Workers off: these tests look at jobs as they were submitted.
    app = await startSampleApp({ store: await stores.options(), worker: { enabled: false } }, undefined, platform);
    store = app.get(JobStore);
  });
  afterAll(async () => {
    // Undefined when beforeAll failed; the Redis server goes all the same.
    await app?.close();
    await stores.dispose();
  });

  it('answers 202 with Location, Retry-After and the Queued job document', async () => {
    const response = await request(app.getHttpServer())
      .post('/api/process')
      .send({ data: 'hello', delayMs: 10 })
      .expect(202);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.headers['retry-after']).toBe('1');
    expect(response.body).toMatchObject({
      id: expect.stringMatching(UUID),
      name: 'Process',
      status: 'Queued',
      retryCount: 0,
      maxRetries: 3,
      result: null,
      error: null,
      startedAt: null,
    });
    expect(response.headers.location).toBe(`/jobs/${response.body.id}`);
    expect(response.body.links).toEqual({ self: `/jobs/${response.body.id}`, cancel: `/jobs/${response.body.id}` });
    expect(response.body).not.toHaveProperty('payload');
    expect(response.body).not.toHaveProperty('headers');

    const status = await request(app.getHttpServer()).get(response.headers.location!).expect(200);
    expect(status.body).toMatchObject({ id: response.body.id, status: 'Queued' });
    expect(status.headers['cache-control']).toBe('no-store');
    expect(status.headers['retry-after']).toBe('1');
  });

  it('stores the validated body as the payload', async () => {
    const response = await request(app.getHttpServer())
      .post('/api/process')
      .send({ data: 'payload check' })
      .expect(202);
    const job = await store.getJob(response.body.id);
    expect(job!.payload).toEqual({ data: 'payload check' });
  });

  it('accepts a route without a body; its payload is {}', async () => {
    const response = await request(app.getHttpServer()).post('/api/generate-report').expect(202);
    expect((await store.getJob(response.body.id))!.payload).toEqual({});
  });

  describe('client mistakes: problem+json, nothing stored', () => {
    let before: number;
    beforeEach(async () => {
      before = await storedJobs();
    });
    afterEach(async () => {
      expect(await storedJobs()).toBe(before);
    });

    it('404 for an unknown id', async () => {
      const response = await request(app.getHttpServer()).get('/jobs/3f0c2a8e-5b7d-4c1e-9a2b-1d2e3f4a5b6c').expect(404);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.body).toMatchObject({
        status: 404,
        title: 'Not Found',
        type: 'about:blank',
        detail: expect.any(String),
      });
    });

    it('400 for a malformed id', async () => {
      const response = await request(app.getHttpServer()).get('/jobs/not-a-uuid').expect(400);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.body.detail).toContain('not a job id');
    });

    it('400 listing the violations for an invalid body', async () => {
      const response = await request(app.getHttpServer())
        .post('/api/process')
        .send({ data: '', delayMs: -5 })
        .expect(400);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.body.errors).toEqual(
        expect.arrayContaining([expect.stringContaining('data'), expect.stringContaining('delayMs')]),
      );
    });

    it('400 for malformed JSON', async () => {
      const response = await request(app.getHttpServer())
        .post('/api/process')
        .set('Content-Type', 'application/json')
        .send('{"data": ')
        .expect(400);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.body.detail).toContain('not valid JSON');
    });

    it('415 for a text/plain body', async () => {
      const response = await request(app.getHttpServer())
        .post('/api/process')
        .set('Content-Type', 'text/plain')
        .send('data=hello')
        .expect(415);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    });

    it('413 for a 2 MB body', async () => {
      const response = await request(app.getHttpServer())
        .post('/api/process')
        .set('Content-Type', 'application/json')
        .send(JSON.stringify({ data: 'x'.repeat(2 * 1024 * 1024) }))
        .expect(413);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.body.detail).toContain('http.bodyLimitBytes');
    });

    it('accepts a body between the Express default (100 kB) and the 1 MB limit, then validates it', async () => {
      const response = await request(app.getHttpServer())
        .post('/api/process')
        .send({ data: 'x'.repeat(500_000) })
        .expect(400);
      expect(response.body.errors.join(' ')).toContain('data');
    });
  });
});

describe.each(PLATFORMS_AND_STORES)('Global prefix (%s, %s store)', (platform, kind) => {
  const stores = new TestStores(kind);
  afterAll(() => stores.dispose());

  it('shows in Location and links', async () => {
    const store = await stores.options();
    const app = await startSampleApp({ store, worker: { enabled: false } }, (a) => a.setGlobalPrefix('v1'), platform);
    try {
      const response = await request(app.getHttpServer()).post('/v1/api/process').send({ data: 'x' }).expect(202);
      expect(response.headers.location).toBe(`/v1/jobs/${response.body.id}`);
      await request(app.getHttpServer()).get(response.headers.location!).expect(200);
    } finally {
      await app.close();
    }
  });
});
