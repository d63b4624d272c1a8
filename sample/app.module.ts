import { type DynamicModule, Module, type Type, ValidationPipe } from '@nestjs/common';
import { APP_GUARD, APP_PIPE } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { TerminusModule } from '@nestjs/terminus';
import { AsyncEndpointsModule, type AsyncEndpointsModuleOptions } from '../lib/index.js';
import { ApiKeyGuard, SAMPLE_API_KEY } from './api-key.guard.js';
import { FlakyController, FlakyHandler } from './flaky.js';
import { HealthController } from './health.controller.js';
import { ProcessController, ProcessHandler } from './process.js';
import { ReportController, ReportHandler } from './report.js';

export type SampleRole = 'all' | 'api' | 'worker';

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
  };
}

const SAMPLE_HANDLERS: Readonly<Record<string, Type>> = {
  Process: ProcessHandler,
  GenerateReport: ReportHandler,
  Flaky: FlakyHandler,
};

/**
 * The handlers this process registers: all of them, or those `WORKER_HANDLERS` names (comma-separated,
 * e.g. `Process,Flaky`), so that a mixed pool of workers can be run by hand. The others' jobs wait for a
 * worker that has them.
 */
export function sampleHandlers(env: NodeJS.ProcessEnv = process.env): Type[] {
  if (env.WORKER_HANDLERS === undefined) return Object.values(SAMPLE_HANDLERS);
  const names = env.WORKER_HANDLERS.split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  const unknown = names.filter((name) => !(name in SAMPLE_HANDLERS));
  if (unknown.length > 0) {
    throw new Error(
      `WORKER_HANDLERS names ${unknown.join(', ')}, which the sample has no handler for: use names among ${Object.keys(SAMPLE_HANDLERS).join(', ')}.`,
    );
  }
  return names.map((name) => SAMPLE_HANDLERS[name]!);
}

@Module({})
export class SampleModule {
  /**
   * `apiKey` (default: `API_KEY`) guards `/api/*`; without one the API is open. `library` is the
   * library's module: tests pass `AsyncEndpointsTestingModule.forRoot()` to run jobs when they choose.
   * `handlers` (default: see sampleHandlers) are the @AsyncHandler providers this process registers.
   */
  static forRoot(
    options: AsyncEndpointsModuleOptions = sampleOptions(),
    apiKey: string | undefined = process.env.API_KEY || undefined,
    library: DynamicModule = AsyncEndpointsModule.forRoot(options),
    handlers: Type[] = sampleHandlers(),
  ): DynamicModule {
    return {
      module: SampleModule,
      imports: [ScheduleModule.forRoot(), TerminusModule, library],
      controllers: [ProcessController, ReportController, FlakyController, HealthController],
      providers: [
        ...handlers,
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
