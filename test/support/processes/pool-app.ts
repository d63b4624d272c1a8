// A process of the mixed-pool tests on a Redis Cluster, run by plain `node` after
// test/support/node-processes.ts compiled it. `ROLE=api` serves `POST /api/x` and `POST /api/y` (jobs
// `X` and `Y`) and `GET /jobs/:id` with workers off; `ROLE=worker` runs the handlers `HANDLERS` names
// (comma-separated, among X and Y), each answering `{ ranOn: INSTANCE_ID }`, so the job document tells
// which worker ran it. The store: the Cluster of `REDIS_CLUSTER_NODES`, under `KEY_PREFIX`.
import 'reflect-metadata';
import { Body, Controller, Injectable, Module, Post, type Type } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { AsyncEndpoint, AsyncEndpointsModule, AsyncHandler, type AsyncEndpointHandler } from '../../../lib/index.js';
import { requiredEnv, startTestProcess } from './process-env.js';

const env = (name: string, fallback?: string): string => requiredEnv('pool-app', name, fallback);

const role = env('ROLE');
const instanceId = env('INSTANCE_ID', `${role}-${process.pid}`);

@Controller('api')
class PoolController {
  @Post('x')
  @AsyncEndpoint('X')
  x(@Body() _body: unknown): void {}

  @Post('y')
  @AsyncEndpoint('Y')
  y(@Body() _body: unknown): void {}
}

@AsyncHandler('X')
@Injectable()
class XHandler implements AsyncEndpointHandler<unknown, { ranOn: string }> {
  handle() {
    return { ranOn: instanceId };
  }
}

@AsyncHandler('Y')
@Injectable()
class YHandler implements AsyncEndpointHandler<unknown, { ranOn: string }> {
  handle() {
    return { ranOn: instanceId };
  }
}

const HANDLERS: Record<string, Type> = { X: XHandler, Y: YHandler };
const handlers =
  role === 'worker'
    ? env('HANDLERS')
        .split(',')
        .map((name) => HANDLERS[name.trim()]!)
    : [];

@Module({
  imports: [
    ScheduleModule.forRoot(),
    AsyncEndpointsModule.forRoot({
      store: { type: 'redis', cluster: { nodes: env('REDIS_CLUSTER_NODES').split(',') }, keyPrefix: env('KEY_PREFIX') },
      worker: { enabled: role === 'worker', workerId: instanceId, pollingIntervalMs: 200 },
    }),
  ],
  controllers: role === 'api' ? [PoolController] : [],
  providers: handlers,
})
class PoolAppModule {}

startTestProcess(PoolAppModule, { role, instanceId, port: 0, logger: ['error', 'warn'] }).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
