import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { AsyncEndpointsService, JobStore } from '../../lib/index.js';
import { startSampleApp } from '../support/sample-app.js';
import { PLATFORMS_AND_STORES } from '../support/test-platforms.js';
import { TestStores } from '../support/test-stores.js';

const CAP = 5;
const SUBMITS = 20;
const RETRY_AFTER = 7;

describe.each(PLATFORMS_AND_STORES)(
  'worker.maximumQueueSize and http.retryAfterSeconds over HTTP (%s, %s store)',
  (platform, kind) => {
    const stores = new TestStores(kind);
    let app: INestApplication;

    beforeAll(async () => {
      // Workers off: every accepted job stays waiting and counts against the cap.
      app = await startSampleApp(
        {
          store: await stores.options(),
          worker: { enabled: false, maximumQueueSize: CAP },
          http: { retryAfterSeconds: RETRY_AFTER },
        },
        undefined,
        platform,
      );
    });
    afterAll(async () => {
      await app?.close();
      await stores.dispose();
    });

    it(`accepts exactly ${CAP} of ${SUBMITS} concurrent submits, answers the rest 429 problem+json with Retry-After ${RETRY_AFTER}, and stores only the accepted`, async () => {
      const responses = await Promise.all(
        Array.from({ length: SUBMITS }, (_, i) =>
          request(app.getHttpServer())
            .post('/api/process')
            .send({ data: `job ${i}` }),
        ),
      );
      const accepted = responses.filter((response) => response.status === 202);
      const refused = responses.filter((response) => response.status !== 202);
      expect(accepted.length).toBe(CAP);
      expect(refused.length).toBe(SUBMITS - CAP);
      for (const response of refused) {
        expect(response.status).toBe(429);
        expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(response.headers['retry-after']).toBe(String(RETRY_AFTER));
        expect(response.body).toMatchObject({
          status: 429,
          detail: expect.stringContaining('worker.maximumQueueSize'),
        });
      }
      expect((await app.get(JobStore).stats(Date.now())).waiting).toBe(CAP);
      const stored = await app.get(AsyncEndpointsService).list('Queued', 100);
      expect(stored.map((job) => job.id).sort()).toEqual(accepted.map((response) => response.body.id).sort());
    });

    it(`sends Retry-After ${RETRY_AFTER} (http.retryAfterSeconds) on the 202 and on a pending job's status`, async () => {
      const [job] = await app.get(AsyncEndpointsService).list('Queued', 1);
      const status = await request(app.getHttpServer()).get(`/jobs/${job!.id}`).expect(200);
      expect(status.body.status).toBe('Queued');
      expect(status.headers['retry-after']).toBe(String(RETRY_AFTER));
      // The queue is full: make room for one submit to see its 202.
      await request(app.getHttpServer()).delete(`/jobs/${job!.id}`).expect(200);
      const submitted = await request(app.getHttpServer()).post('/api/process').send({ data: 'one more' }).expect(202);
      expect(submitted.headers['retry-after']).toBe(String(RETRY_AFTER));
    });
  },
);
