import { jest } from '@jest/globals';
import { Body, Controller, Inject, Injectable, type INestApplication, Logger, Module, Post } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { ScheduleModule } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import {
  AsyncEndpoint,
  AsyncEndpointsModule,
  AsyncEndpointsService,
  AsyncHandler,
  JobStore,
  MemoryJobStore,
  NonRetryableError,
  type AsyncContext,
  type AsyncEndpointHandler,
} from '../../lib/index.js';
import { waitFor } from '../support/sample-app.js';
import { startTestApp } from '../support/test-app.js';

/** Behaviour of options that only had unit tests of their defaults and validation (memory store, Express). */

interface Work {
  mode: 'ok' | 'fail' | 'fail-once' | 'hang';
}

@AsyncHandler('Work', { maxRetries: 1 })
@Injectable()
class WorkHandler implements AsyncEndpointHandler<Work> {
  async handle({ request, job, signal }: AsyncContext<Work>) {
    if (request.mode === 'fail') throw new NonRetryableError('never works', 'BAD');
    if (request.mode === 'fail-once' && job.attempt === 1)
      throw Object.assign(new Error('first attempt fails'), { code: 'FLAKY' });
    if (request.mode === 'hang')
      await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    return { attempt: job.attempt };
  }
}

@Controller('work')
class WorkController {
  @Post()
  @AsyncEndpoint('Work')
  submit(@Body() _body: Work) {}
}

const work = { controllers: [WorkController], providers: [WorkHandler] };

describe('Options at run time', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
    jest.restoreAllMocks();
  });
  const http = () => request(app!.getHttpServer());
  const submit = async (mode: Work['mode']) =>
    (await http().post('/work').send({ mode }).expect(202)).body.id as string;
  const until = (id: string, status: string) =>
    waitFor(
      async () => {
        const { body } = await http().get(`/jobs/${id}`);
        return body.status === status ? body : undefined;
      },
      10_000,
      5,
    );

  it('retention.failedTtlSeconds: a Failed job answers 200, then 404 once its TTL is over, while a Completed one stays', async () => {
    app = await startTestApp({ retention: { failedTtlSeconds: 0.3, completedTtlSeconds: 3600 } }, work);
    const failed = await submit('fail');
    const completed = await submit('ok');
    await until(failed, 'Failed');
    await until(completed, 'Completed');
    await waitFor(async () => ((await http().get(`/jobs/${failed}`)).status === 404 ? true : undefined));
    await http().get(`/jobs/${completed}`).expect(200);
  });

  it('jobManager.maxRetryDelaySeconds caps the delay: Scheduled is observed with a delay within [cap / 2, cap], then the retry completes', async () => {
    app = await startTestApp({ jobManager: { retryDelayBaseSeconds: 3600, maxRetryDelaySeconds: 1 } }, work);
    const id = await submit('fail-once');
    const scheduled = await until(id, 'Scheduled');
    expect(scheduled).toMatchObject({ retryCount: 1, error: { code: 'FLAKY' } });
    const delayMs = Date.parse(scheduled.retryDelayUntil) - Date.parse(scheduled.lastUpdatedAt);
    expect(delayMs).toBeGreaterThanOrEqual(500);
    expect(delayMs).toBeLessThanOrEqual(1000);
    expect(await until(id, 'Completed')).toMatchObject({ retryCount: 1, result: { attempt: 2 }, error: null });
  });

  it('worker.jobTimeoutMinutes: an attempt past its budget fails with JOB_TIMEOUT naming the budget', async () => {
    // 0.002 min = 120 ms; Work has maxRetries 1: both attempts time out, the retry after about 10 ms.
    app = await startTestApp(
      { worker: { jobTimeoutMinutes: 0.002 }, jobManager: { retryDelayBaseSeconds: 0.01 } },
      work,
    );
    const id = await submit('hang');
    const failed = await until(id, 'Failed');
    expect(failed.retryCount).toBe(1);
    expect(failed.error).toMatchObject({
      code: 'JOB_TIMEOUT',
      message: expect.stringContaining('time budget of 120 ms'),
    });
  });

  it("recovery.enableDistributedJobRecovery: false leaves a dead worker's job InProgress, which a process with recovery takes back", async () => {
    const deadWorkerJob = async (store: JobStore) => {
      const service = app!.get(AsyncEndpointsService);
      const { id } = await service.submit('Ghost', {});
      const [claimed] = await store.claimDueJobs({
        workerId: 'dead',
        names: ['Ghost'],
        limit: 1,
        leaseMs: 50,
        now: Date.now(),
        maxConcurrentJobs: null,
      });
      expect(claimed?.job.id).toBe(id);
      return id;
    };
    const sweepEvery = { recoveryCheckIntervalSeconds: 0.05 };
    const withoutStore = new MemoryJobStore();
    app = await startTestApp(
      {
        store: withoutStore,
        worker: { enabled: false },
        recovery: { ...sweepEvery, enableDistributedJobRecovery: false },
      },
      {},
    );
    const withoutApp = app;
    const left = await deadWorkerJob(withoutStore);
    const withStore = new MemoryJobStore();
    app = await startTestApp({ store: withStore, worker: { enabled: false }, recovery: sweepEvery }, {});
    const withApp = app;
    try {
      const started = Date.now();
      const taken = await deadWorkerJob(withStore);
      await waitFor(async () => ((await withStore.getJob(taken))?.status === 'Queued' ? true : undefined));
      // As long again as the process with recovery needed, and at least a few sweep periods.
      await new Promise((resolve) => setTimeout(resolve, Math.max(Date.now() - started, 200)));
      expect(await withoutStore.getJob(left)).toMatchObject({ status: 'InProgress', workerId: 'dead' });
    } finally {
      await withoutApp.close();
      app = withApp;
    }
  });

  it('warns at boot when recovery.jobTimeoutMinutes is not longer than worker.jobTimeoutMinutes, naming both', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    app = await startTestApp({ worker: { jobTimeoutMinutes: 2 }, recovery: { jobTimeoutMinutes: 1 } }, work);
    expect(warn).toHaveBeenCalledWith(
      expect.stringContaining('recovery.jobTimeoutMinutes (1) is not longer than worker.jobTimeoutMinutes (2 min)'),
    );
  });

  describe('isGlobal', () => {
    @Injectable()
    class UsesService {
      constructor(@Inject(AsyncEndpointsService) readonly service: AsyncEndpointsService) {}
    }
    @Module({ providers: [UsesService] })
    class FeatureModule {}

    const compile = (global: { isGlobal?: boolean } = {}) =>
      Test.createTestingModule({
        imports: [
          ScheduleModule.forRoot(),
          AsyncEndpointsModule.forRoot({ worker: { enabled: false }, ...global }),
          FeatureModule,
        ],
      }).compile();

    it('by default, a module that does not import AsyncEndpointsModule can inject AsyncEndpointsService', async () => {
      const moduleRef = await compile();
      expect(moduleRef.get(UsesService, { strict: false }).service).toBeInstanceOf(AsyncEndpointsService);
      await moduleRef.close();
    });

    it('with isGlobal: undefined (an unset variable) it still can', async () => {
      const moduleRef = await compile({ isGlobal: undefined });
      expect(moduleRef.get(UsesService, { strict: false }).service).toBeInstanceOf(AsyncEndpointsService);
      await moduleRef.close();
    });

    it('with isGlobal: false it cannot: the boot names the missing AsyncEndpointsService', async () => {
      await expect(compile({ isGlobal: false })).rejects.toThrow(/AsyncEndpointsService/);
    });
  });

  it("forRootAsync with ConfigModule and ConfigService: the factory's values apply at run time", async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        ConfigModule.forRoot({
          ignoreEnvFile: true,
          load: [() => ({ RETRY_AFTER_SECONDS: '9', JOB_TIMEOUT_MINUTES: '0.002' })],
        }),
        ScheduleModule.forRoot(),
        AsyncEndpointsModule.forRootAsync({
          imports: [ConfigModule],
          inject: [ConfigService],
          useFactory: (config: ConfigService) => ({
            http: { retryAfterSeconds: Number(config.get('RETRY_AFTER_SECONDS')) },
            worker: { jobTimeoutMinutes: Number(config.get('JOB_TIMEOUT_MINUTES')) },
            jobManager: { retryDelayBaseSeconds: 0.01 },
          }),
        }),
      ],
      ...work,
    }).compile();
    app = moduleRef.createNestApplication({ logger: ['error'] });
    await app.listen(0, '127.0.0.1');
    const submitted = await http().post('/work').send({ mode: 'hang' }).expect(202);
    expect(submitted.headers['retry-after']).toBe('9');
    const failed = await until(submitted.body.id, 'Failed');
    expect(failed.error).toMatchObject({
      code: 'JOB_TIMEOUT',
      message: expect.stringContaining('time budget of 120 ms'),
    });
  });
});
