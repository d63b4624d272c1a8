import { type DynamicModule, Module, ValidationPipe } from '@nestjs/common';
import { APP_GUARD, APP_PIPE } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { TerminusModule } from '@nestjs/terminus';
import { AsyncEndpointsModule, type AsyncEndpointsModuleOptions } from '../lib/index.js';
import { ApiKeyGuard, SAMPLE_API_KEY } from './api-key.guard.js';
import { DashboardKeyGuard } from './dashboard-key.guard.js';
import { FlakyController, FlakyHandler } from './flaky.js';
import { HealthController } from './health.controller.js';
import { ProcessController, ProcessHandler } from './process.js';
import { ReportController, ReportHandler } from './report.js';

export type SampleRole = 'all' | 'api' | 'worker';

/** The jobs dashboard at /admin/jobs, behind the API key when `API_KEY` is set. */
export const SAMPLE_DASHBOARD = { enabled: true, path: 'admin/jobs', guards: [DashboardKeyGuard] };

/** The options the sample runs with, from the environment (`REDIS_URL`, role). */
export function sampleOptions(env: NodeJS.ProcessEnv = process.env): AsyncEndpointsModuleOptions {
  const role = (env.ASYNC_ENDPOINTS_ROLE ?? 'all') as SampleRole;
  if (role !== 'all' && !env.REDIS_URL) {
    throw new Error(
      `The ${role} role shares jobs with other processes through Redis: set REDIS_URL (for example redis://localhost:6379).`,
    );
  }
  return {
    store: env.REDIS_URL ? { type: 'redis', url: env.REDIS_URL } : { type: 'memory' },
    worker: { enabled: role !== 'api', ...(env.INSTANCE_ID ? { workerId: env.INSTANCE_ID } : {}) },
    // Served where HTTP is: a worker-only process answers no requests.
    ...(role !== 'worker' ? { dashboard: SAMPLE_DASHBOARD } : {}),
  };
}

@Module({})
export class SampleModule {
  /**
   * `apiKey` (default: `API_KEY`) guards `/api/*`; without one the API is open. `library` is the
   * library's module: tests pass `AsyncEndpointsTestingModule.forRoot()` to run jobs when they choose.
   */
  static forRoot(
    options: AsyncEndpointsModuleOptions = sampleOptions(),
    apiKey: string | undefined = process.env.API_KEY || undefined,
    library: DynamicModule = AsyncEndpointsModule.forRoot(options),
  ): DynamicModule {
    return {
      module: SampleModule,
      imports: [ScheduleModule.forRoot(), TerminusModule, library],
      controllers: [ProcessController, ReportController, FlakyController, HealthController],
      providers: [
        ProcessHandler,
        ReportHandler,
        FlakyHandler,
        DashboardKeyGuard,
        { provide: SAMPLE_API_KEY, useValue: apiKey },
        { provide: APP_GUARD, useClass: ApiKeyGuard },
        {
          provide: APP_PIPE,
          useValue: new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }),
        },
      ],
    };
  }
}
