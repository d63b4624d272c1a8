import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { AsyncEndpointsModule } from '../../lib/index.js';
import { SampleModule, sampleHandlers } from '../../sample/app.module.js';
import { FlakyHandler } from '../../sample/flaky.js';
import { ProcessHandler } from '../../sample/process.js';
import { waitFor } from '../support/sample-app.js';

describe('the sample with WORKER_HANDLERS', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('registers only the handlers it names, all of them without it, and refuses a name the sample lacks', () => {
    expect(sampleHandlers({ WORKER_HANDLERS: 'Process, Flaky' })).toEqual([ProcessHandler, FlakyHandler]);
    expect(sampleHandlers({})).toHaveLength(3);
    expect(() => sampleHandlers({ WORKER_HANDLERS: 'Process,Proces' })).toThrow(
      'WORKER_HANDLERS names Proces, which the sample has no handler for: use names among Process, GenerateReport, Flaky.',
    );
  });

  it('runs the jobs of the names it registers; the others stay Queued', async () => {
    const options = { store: { type: 'memory' as const } };
    const moduleRef = await Test.createTestingModule({
      imports: [
        SampleModule.forRoot(
          options,
          undefined,
          AsyncEndpointsModule.forRoot(options),
          sampleHandlers({ WORKER_HANDLERS: 'Process' }),
        ),
      ],
    }).compile();
    app = moduleRef.createNestApplication({ logger: ['error'] });
    await app.listen(0, '127.0.0.1');
    const server = app.getHttpServer();
    const flaky = await request(server).post('/api/flaky').send({ failTimes: 0 }).expect(202);
    const processed = await request(server).post('/api/process').send({ data: 'x', delayMs: 0 }).expect(202);
    await waitFor(async () => {
      const { body } = await request(server).get(`/jobs/${processed.body.id}`);
      return body.status === 'Completed' ? true : undefined;
    });
    expect((await request(server).get(`/jobs/${flaky.body.id}`).expect(200)).body).toMatchObject({
      name: 'Flaky',
      status: 'Queued',
    });
  });
});
