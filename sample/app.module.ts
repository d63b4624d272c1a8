import { type DynamicModule, Module, type Type, ValidationPipe } from '@nestjs/common';
import { APP_GUARD, APP_PIPE } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { TerminusModule } from '@nestjs/terminus';
import {
  AsyncEndpointsModule,
  type AsyncEndpointsModuleOptions,
  type MemoryStoreConfig,
  type RedisStoreConfig,
} from '../lib/index.js';
import { ApiKeyGuard, SAMPLE_API_KEY } from './api-key.guard.js';
import { DashboardKeyGuard } from './dashboard-key.guard.js';
import { FlakyController, FlakyHandler } from './flaky.js';
import { HealthController } from './health.controller.js';
import { ProcessController, ProcessHandler } from './process.js';
import { ReportController, ReportHandler } from './report.js';

export type SampleRole = 'all' | 'api' | 'worker';

/** The jobs dashboard at /admin/jobs, behind the API key when `API_KEY` is set. */
export const SAMPLE_DASHBOARD = { enabled: true, path: 'admin/jobs', guards: [DashboardKeyGuard] };

/**
 * The options the sample runs with, from the environment: `REDIS_URL` (one Redis) or
 * `REDIS_CLUSTER_NODES` (a Redis Cluster's seed nodes, `host:port,host:port,...`), `REDIS_WAIT_REPLICAS`
 * (replicas that must hold each write, store.waitForReplicas), the role.
 */
export function sampleOptions(env: NodeJS.ProcessEnv = process.env): AsyncEndpointsModuleOptions {
  const role = (env.ASYNC_ENDPOINTS_ROLE ?? 'all') as SampleRole;
  if (env.REDIS_URL && env.REDIS_CLUSTER_NODES) {
    throw new Error('Set REDIS_URL (one Redis) or REDIS_CLUSTER_NODES (a Redis Cluster), not both.');
  }
  if (role !== 'all' && !env.REDIS_URL && !env.REDIS_CLUSTER_NODES) {
    throw new Error(
      `The ${role} role shares jobs with other processes through Redis: set REDIS_URL (for example redis://localhost:6379) or REDIS_CLUSTER_NODES (for example 10.0.0.1:7000,10.0.0.2:7000).`,
    );
  }
  return {
    store: sampleStore(env),
    worker: { enabled: role !== 'api', ...(env.INSTANCE_ID ? { workerId: env.INSTANCE_ID } : {}) },
    // Served where HTTP is: a worker-only process answers no requests.
    ...(role !== 'worker' ? { dashboard: SAMPLE_DASHBOARD } : {}),
  };
}

function sampleStore(env: NodeJS.ProcessEnv): MemoryStoreConfig | RedisStoreConfig {
  if (!env.REDIS_URL && !env.REDIS_CLUSTER_NODES) {
    if (env.REDIS_WAIT_REPLICAS) throw new Error('REDIS_WAIT_REPLICAS needs REDIS_URL or REDIS_CLUSTER_NODES.');
    return { type: 'memory' };
  }
  const nodes = env.REDIS_CLUSTER_NODES?.split(',')
    .map((node) => node.trim())
    .filter(Boolean);
  return {
    type: 'redis',
    ...(nodes ? { cluster: { nodes } } : { url: env.REDIS_URL }),
    // The library checks the value at startup and names the option if it is not a whole number >= 1.
    ...(env.REDIS_WAIT_REPLICAS
      ? { waitForReplicas: { replicas: Number(env.REDIS_WAIT_REPLICAS), timeoutMs: SAMPLE_REPLICA_WAIT_MS } }
      : {}),
  };
}

/** How long the sample waits for replicas to confirm a write (below the 1.5 s command timeout). */
const SAMPLE_REPLICA_WAIT_MS = 500;

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
