import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { JobStore } from '../../lib/index.js';
import { SAMPLE_DASHBOARD, SampleModule } from '../../sample/app.module.js';
import { waitFor } from '../support/sample-app.js';
import { httpAdapter, PLATFORMS, type HttpPlatform } from '../support/test-platforms.js';

const KEY = 'sample-key-8d5e2a';

async function startSample(platform: HttpPlatform, apiKey: string | undefined): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      SampleModule.forRoot(
        { store: { type: 'memory' }, worker: { maximumConcurrency: 2 }, dashboard: SAMPLE_DASHBOARD },
        apiKey,
      ),
    ],
  }).compile();
  const app = moduleRef.createNestApplication(httpAdapter(platform), { logger: ['error'] });
  await app.listen(0, '127.0.0.1');
  return app;
}

describe.each(PLATFORMS)('the sample with API_KEY set (%s)', (platform) => {
  let app: INestApplication;

  beforeAll(async () => {
    app = await startSample(platform, KEY);
  });
  afterAll(async () => {
    await app?.close();
  });

  it('answers the dashboard (/admin/jobs) without the key 401 with WWW-Authenticate: Basic, so that a browser asks for it', async () => {
    for (const path of ['/admin/jobs', '/admin/jobs/api/stats']) {
      const response = await request(app.getHttpServer()).get(path).expect(401);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.headers['www-authenticate']).toBe('Basic realm="jobs dashboard", charset="UTF-8"');
    }
    await request(app.getHttpServer()).get('/admin/jobs').auth('admin', 'not-the-key').expect(401);
  });

  it('serves the dashboard with the key as the Basic password or as X-API-Key', async () => {
    const page = await request(app.getHttpServer()).get('/admin/jobs').auth('admin', KEY).expect(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    await request(app.getHttpServer()).get('/admin/jobs/api/stats').set('X-API-Key', KEY).expect(200);
  });

  it.each([
    ['no key', {}],
    ['a wrong key', { 'X-API-Key': 'not-the-key' }],
    ['a wrong key of the right length', { 'X-API-Key': 'x'.repeat(KEY.length) }],
  ])('answers /api/* with %s 401 problem+json, storing nothing', async (_case, headers) => {
    const before = (await app.get(JobStore).stats(Date.now())).counts.Queued;
    for (const [path, body] of [
      ['/api/process', { data: 'hello' }],
      ['/api/generate-report', undefined],
      ['/api/flaky', { failTimes: 0 }],
    ] as const) {
      const response = await request(app.getHttpServer()).post(path).set(headers).send(body);
      expect(response.status).toBe(401);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.body).toMatchObject({
        status: 401,
        title: 'Unauthorized',
        detail: 'A valid X-API-Key header is required.',
      });
    }
    expect((await app.get(JobStore).stats(Date.now())).counts.Queued).toBe(before);
  });

  it(`guards the routes, not the spelling: /API/process, /Api/Generate-Report and /api/flaky/ get ${
    platform === 'express' ? '401 problem+json (Express routes them to /api/*)' : '404 (Fastify routes by exact path)'
  } without a key, storing nothing`, async () => {
    const before = (await app.get(JobStore).stats(Date.now())).counts.Queued;
    for (const path of ['/API/process', '/Api/Generate-Report', '/api/flaky/']) {
      const response = await request(app.getHttpServer()).post(path).send({ data: 'hello', failTimes: 0 });
      expect({ path, status: response.status }).toEqual({ path, status: platform === 'express' ? 401 : 404 });
      if (platform === 'express') expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
    expect((await app.get(JobStore).stats(Date.now())).counts.Queued).toBe(before);
  });

  it('accepts the right key, never stores it, and leaves /jobs/:id and /health open', async () => {
    const submitted = await request(app.getHttpServer())
      .post('/api/process')
      .set('X-API-Key', KEY)
      .send({ data: 'guarded', delayMs: 0 })
      .expect(202);
    const id = submitted.body.id as string;
    expect((await app.get(JobStore).getJob(id))!.headers).not.toHaveProperty('x-api-key');
    const done = await waitFor(async () => {
      const status = await request(app.getHttpServer()).get(`/jobs/${id}`);
      return status.body.status === 'Completed' ? status : undefined;
    });
    expect(done.body.result).toEqual({ processed: 'GUARDED', length: 7 });
    await request(app.getHttpServer()).get('/health').expect(200);
  });
});

describe('the sample without API_KEY', () => {
  it('leaves /api/* and the dashboard open', async () => {
    const app = await startSample('express', undefined);
    try {
      await request(app.getHttpServer()).post('/api/process').send({ data: 'open' }).expect(202);
      await request(app.getHttpServer()).get('/admin/jobs/api/stats').expect(200);
    } finally {
      await app.close();
    }
  });
});
