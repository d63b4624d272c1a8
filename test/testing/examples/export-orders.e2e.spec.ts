import { type INestApplication, ValidationPipe } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { AsyncEndpointsService } from 'nestjs-async-endpoints';
import { AsyncEndpointsTestHarness, AsyncEndpointsTestingModule } from 'nestjs-async-endpoints/testing';
import request from 'supertest';
import { ExportController, ExportOrdersHandler, OrdersClient } from './export-orders.js';

/** Fails its first call, as a service that is briefly down. */
class FlakyOrdersClient extends OrdersClient {
  calls = 0;

  override async fetchOrders(tenant: string) {
    if (++this.calls === 1) throw new Error('orders service unavailable');
    return super.fetchOrders(tenant);
  }
}

describe('POST /exports', () => {
  let app: INestApplication;
  let harness: AsyncEndpointsTestHarness;

  beforeEach(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [AsyncEndpointsTestingModule.forRoot()],
      controllers: [ExportController],
      providers: [ExportOrdersHandler, OrdersClient],
    })
      .overrideProvider(OrdersClient)
      .useValue(new FlakyOrdersClient())
      .compile();
    app = moduleRef.createNestApplication();
    app.useGlobalPipes(new ValidationPipe({ transform: true }));
    await app.init();
    harness = app.get(AsyncEndpointsTestHarness);
  });

  afterEach(() => app.close());

  it('answers 202, retries the failed attempt and completes', async () => {
    const submitted = await request(app.getHttpServer())
      .post('/exports')
      .set('X-Tenant-Id', 'acme')
      .send({ format: 'csv' })
      .expect(202);
    const location = submitted.headers.location!;

    // The first attempt fails; its retry waits for the backoff.
    await harness.drain();
    const scheduled = await request(app.getHttpServer()).get(location).expect(200);
    expect(scheduled.body).toMatchObject({ status: 'Scheduled', retryCount: 1 });

    // Run the retry now instead of waiting for it.
    await harness.drain({ skipBackoff: true });
    const done = await request(app.getHttpServer()).get(location).expect(200);
    expect(done.body).toMatchObject({
      status: 'Completed',
      retryCount: 1,
      progress: 100,
      result: { format: 'csv', rows: 2, tenant: 'acme' },
    });
  });

  it('refuses an unknown format with a 400 problem and stores no job', async () => {
    await request(app.getHttpServer())
      .post('/exports')
      .send({ format: 'pdf' })
      .expect(400)
      .expect('Content-Type', /^application\/problem\+json/);
    expect(await app.get(AsyncEndpointsService).list('Queued')).toEqual([]);
  });
});
