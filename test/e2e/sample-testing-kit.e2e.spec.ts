import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { AsyncEndpointsTestHarness, AsyncEndpointsTestingModule, createAsyncContext } from '../../lib/testing/index.js';
import { SampleModule } from '../../sample/app.module.js';
import { ReportHandler } from '../../sample/report.js';
import { httpAdapter, PLATFORMS } from '../support/test-platforms.js';

describe.each(PLATFORMS)(
  'The sample with the testing kit (%s): jobs run when the test drains, no waiting',
  (platform) => {
    let app: INestApplication;
    let harness: AsyncEndpointsTestHarness;
    const http = () => request(app.getHttpServer());

    beforeAll(async () => {
      const moduleRef = await Test.createTestingModule({
        imports: [SampleModule.forRoot({}, undefined, AsyncEndpointsTestingModule.forRoot())],
      }).compile();
      app = moduleRef.createNestApplication(httpAdapter(platform), { logger: ['error'] });
      await app.init();
      if (platform === 'fastify') await app.getHttpAdapter().getInstance().ready();
      harness = app.get(AsyncEndpointsTestHarness);
    });
    afterAll(() => app?.close());

    it('runs Flaky with failTimes 2: Scheduled 1 to 2 s ahead after attempt 1, still Scheduled after a plain drain, Completed on attempt 3 with skipBackoff', async () => {
      const submitted = await http().post('/api/flaky').send({ failTimes: 2 }).expect(202);
      const location = submitted.headers.location!;
      expect((await http().get(location).expect(200)).body.status).toBe('Queued');

      await harness.drain();
      const first = (await http().get(location).expect(200)).body;
      expect(first).toMatchObject({ status: 'Scheduled', retryCount: 1, error: { code: 'FLAKY_FAILURE' } });
      // The default backoff (retryDelayBaseSeconds 2) with its jitter: a point of [d/2, d], d = 2 s.
      const delayMs = Date.parse(first.retryDelayUntil) - Date.parse(first.lastUpdatedAt);
      expect(delayMs).toBeGreaterThanOrEqual(1000);
      expect(delayMs).toBeLessThanOrEqual(2000);

      // Nothing is due yet: a plain drain leaves the retry waiting.
      await harness.drain();
      expect((await http().get(location).expect(200)).body).toMatchObject({ status: 'Scheduled', retryCount: 1 });

      await harness.drain({ skipBackoff: true });
      expect((await http().get(location).expect(200)).body).toMatchObject({
        status: 'Completed',
        retryCount: 2,
        result: { succeededOnAttempt: 3 },
        error: null,
      });
    });

    it('ends Flaky with failTimes 5 Failed after maxRetries 3, with the last error', async () => {
      const submitted = await http().post('/api/flaky').send({ failTimes: 5 }).expect(202);
      await harness.drain({ skipBackoff: true });
      expect((await http().get(submitted.headers.location!).expect(200)).body).toMatchObject({
        status: 'Failed',
        retryCount: 3,
        result: null,
        error: { code: 'FLAKY_FAILURE' },
      });
    });

    it('completes GenerateReport with its final progress and the requesting user', async () => {
      const submitted = await http().post('/api/generate-report').set('X-User-Id', 'u-42').expect(202);
      await harness.drain();
      expect((await http().get(submitted.headers.location!).expect(200)).body).toMatchObject({
        status: 'Completed',
        progress: 100,
        result: { title: 'Orders by region', requestedBy: 'u-42' },
      });
    });
  },
);

describe("The sample's ReportHandler, unit-tested with createAsyncContext", () => {
  it('reports progress per region, 25 to 100, and names the user of the X-User-Id header', async () => {
    const { ctx, progress } = createAsyncContext<Record<string, never>>({
      request: {},
      headers: { 'X-User-Id': 'u-7' },
    });
    const report = await new ReportHandler().handle(ctx);
    expect(progress).toEqual([25, 50, 75, 100]);
    expect(report).toMatchObject({
      requestedBy: 'u-7',
      rows: [{ region: 'north' }, { region: 'east' }, { region: 'south' }, { region: 'west' }],
    });
  });
});
