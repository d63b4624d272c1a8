import { jest } from '@jest/globals';
import { Controller, Injectable, Logger, Post } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { ScheduleModule } from '@nestjs/schedule';
import request from 'supertest';
import {
  AsyncEndpoint,
  AsyncEndpointsHealthIndicator,
  AsyncEndpointsModule,
  AsyncHandler,
  AsyncHandlerDeclarationError,
  InvalidAsyncEndpointsOptionsError,
  ScheduleModuleMissingError,
  type AsyncEndpointHandler,
  type AsyncEndpointsModuleOptions,
} from '../../lib/index.js';

@AsyncHandler('Dup')
@Injectable()
class FirstDupHandler implements AsyncEndpointHandler {
  handle() {}
}

@AsyncHandler('Dup')
@Injectable()
class SecondDupHandler implements AsyncEndpointHandler {
  handle() {}
}

@Controller('orphan')
class OrphanController {
  @Post()
  @AsyncEndpoint('Nobody')
  submit() {}
}

async function boot(
  options: AsyncEndpointsModuleOptions,
  extra: { controllers?: never[]; providers?: never[] } = {},
  schedule = true,
) {
  const moduleRef = await Test.createTestingModule({
    imports: [...(schedule ? [ScheduleModule.forRoot()] : []), AsyncEndpointsModule.forRoot(options)],
    controllers: extra.controllers ?? [],
    providers: extra.providers ?? [],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

describe('Boot errors', () => {
  it('stops on two handlers with one name, naming both classes', async () => {
    const booting = boot({}, { providers: [FirstDupHandler, SecondDupHandler] as never[] });
    await expect(booting).rejects.toThrow(AsyncHandlerDeclarationError);
    await expect(booting).rejects.toThrow(/'Dup'.*FirstDupHandler and SecondDupHandler/);
  });

  it.each([
    ['runs a worker', {}, "this process's worker does not run its jobs"],
    ['is API-only', { worker: { enabled: false } }, 'this API-only process does not run its jobs'],
  ] as const)(
    'boots with an endpoint whose name has no handler in a process that %s, warns naming it, and queues its job',
    async (_kind, options, where) => {
      const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      const app = await boot(options, { controllers: [OrphanController] as never[] });
      try {
        expect(warn).toHaveBeenCalledWith(
          expect.stringContaining(
            `@AsyncEndpoint('Nobody') on OrphanController (POST /orphan) has no @AsyncHandler('Nobody') provider, so ${where}: they wait, Queued, until a worker process with that handler claims them`,
          ),
        );
        const response = await request(app.getHttpServer()).post('/orphan').expect(202);
        expect(response.body).toMatchObject({ name: 'Nobody', status: 'Queued' });
      } finally {
        warn.mockRestore();
        await app.close();
      }
    },
  );

  it('stops on an invalid option, naming it', async () => {
    await expect(boot({ worker: { pollingIntervalMs: -1 } })).rejects.toThrow(InvalidAsyncEndpointsOptionsError);
    await expect(boot({ worker: { pollingIntervalMs: -1 } })).rejects.toThrow(
      'worker.pollingIntervalMs = -1: it must not be less than 1',
    );
  });

  it('stops with a clear message when ScheduleModule.forRoot() is missing', async () => {
    await expect(boot({}, {}, false)).rejects.toThrow(ScheduleModuleMissingError);
    await expect(boot({}, {}, false)).rejects.toThrow(/Add ScheduleModule.forRoot\(\)/);
  });

  it('stops on an unreachable store with failFastOnStoreUnavailable', async () => {
    await expect(
      boot({ failFastOnStoreUnavailable: true, store: { type: 'redis', url: 'redis://127.0.0.1:1' } }),
    ).rejects.toThrow(/unreachable at startup.*ECONNREFUSED.*failFastOnStoreUnavailable is true/);
  });

  it('boots anyway on an unreachable store without it; health reports down', async () => {
    const error = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const app = await boot({ worker: { enabled: false }, store: { type: 'redis', url: 'redis://127.0.0.1:1' } });
    try {
      expect(error).toHaveBeenCalledWith(
        expect.stringContaining('Starting anyway (failFastOnStoreUnavailable is false)'),
      );
      const health = await app.get(AsyncEndpointsHealthIndicator).isHealthy();
      expect(health['async-endpoints']).toMatchObject({
        status: 'down',
        message: expect.stringContaining('unreachable'),
      });
    } finally {
      error.mockRestore();
      await app.close();
    }
  });
});

describe('jobsPath', () => {
  @AsyncHandler('Any')
  @Injectable()
  class AnyHandler implements AsyncEndpointHandler {
    handle() {}
  }

  it('mounts the status controller where http.jobsPath says, with forRootAsync too', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        ScheduleModule.forRoot(),
        AsyncEndpointsModule.forRootAsync({
          useFactory: async () => ({ worker: { enabled: false }, http: { jobsPath: 'api/v2/operations' } }),
        }),
      ],
      providers: [AnyHandler],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    try {
      await request(app.getHttpServer()).get('/api/v2/operations/3f0c2a8e-5b7d-4c1e-9a2b-1d2e3f4a5b6c').expect(404);
      await request(app.getHttpServer()).get('/jobs/3f0c2a8e-5b7d-4c1e-9a2b-1d2e3f4a5b6c').expect(404);
    } finally {
      await app.close();
    }
  });

  it('mounts none with jobsPath: false', async () => {
    const app = await boot(
      { worker: { enabled: false }, http: { jobsPath: false } },
      { controllers: [OrphanController] as never[] },
    );
    try {
      const response = await request(app.getHttpServer()).post('/orphan').expect(202);
      expect(response.headers.location).toBeUndefined();
      expect(response.body.links).toBeUndefined();
      const status = await request(app.getHttpServer()).get(`/jobs/${response.body.id}`).expect(404);
      expect(status.headers['content-type']).not.toMatch(/problem/);
    } finally {
      await app.close();
    }
  });

  it('forRootAsync: the status route answers under http.jobsPath (problem+json 404 for an unknown id), not under /jobs', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        ScheduleModule.forRoot(),
        AsyncEndpointsModule.forRootAsync({
          useFactory: async () => ({ worker: { enabled: false }, http: { jobsPath: 'api/v2/operations' } }),
        }),
      ],
      providers: [AnyHandler],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    try {
      const id = '3f0c2a8e-5b7d-4c1e-9a2b-1d2e3f4a5b6c';
      const mounted = await request(app.getHttpServer()).get(`/api/v2/operations/${id}`).expect(404);
      expect(mounted.headers['content-type']).toMatch(/^application\/problem\+json/);
      const elsewhere = await request(app.getHttpServer()).get(`/jobs/${id}`).expect(404);
      expect(elsewhere.headers['content-type']).not.toMatch(/problem/);
    } finally {
      await app.close();
    }
  });

  it('mounts none with jobsPath: false from forRootAsync: no status route under /jobs or at the root', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        ScheduleModule.forRoot(),
        AsyncEndpointsModule.forRootAsync({
          useFactory: async () => ({ worker: { enabled: false }, http: { jobsPath: false as const } }),
        }),
      ],
      controllers: [OrphanController],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    try {
      const response = await request(app.getHttpServer()).post('/orphan').expect(202);
      expect(response.headers.location).toBeUndefined();
      for (const path of [`/jobs/${response.body.id}`, `/${response.body.id}`]) {
        const status = await request(app.getHttpServer()).get(path).expect(404);
        expect(status.headers['content-type']).not.toMatch(/problem/);
      }
    } finally {
      await app.close();
    }
  });
});
