// A process of the multi-process tests, run by plain `node` after test/support/node-processes.ts compiled
// it. `ROLE=api` serves `POST /api/count` (202, job `Count`) and `GET /jobs/:id` with workers off;
// `ROLE=worker` runs workers only, whose `Count` handler INCRs `<COUNTER_PREFIX>:<job id>` through a
// Redis connection of its own: a count of runs per job that nothing in the library can fake.
// It prints `READY {"port": <port or null>, "workerId": ...}` once it serves.
import 'reflect-metadata';
import { Body, Controller, Injectable, Module, type OnApplicationShutdown, Post, ValidationPipe } from '@nestjs/common';
import { APP_PIPE } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { IsInt, Min } from 'class-validator';
import { Redis } from 'ioredis';
import {
  AsyncEndpoint,
  AsyncEndpointsModule,
  AsyncHandler,
  type AsyncContext,
  type AsyncEndpointHandler,
} from '../../../lib/index.js';
import { requiredEnv, startTestProcess } from './process-env.js';

const env = (name: string, fallback?: string): string => requiredEnv('counter-app', name, fallback);

const role = env('ROLE');
const redisUrl = env('REDIS_URL');
const counterPrefix = env('COUNTER_PREFIX');
const instanceId = env('INSTANCE_ID', `${role}-${process.pid}`);

class CountRequest {
  @IsInt() @Min(0) n!: number;
}

@Controller('api')
class CountController {
  @Post('count')
  @AsyncEndpoint('Count')
  submit(@Body() _body: CountRequest): void {}
}

@AsyncHandler('Count')
@Injectable()
class CountHandler
  implements AsyncEndpointHandler<CountRequest, { runs: number; workerId: string }>, OnApplicationShutdown
{
  private readonly counters = new Redis(redisUrl);

  constructor() {
    this.counters.on('error', () => undefined);
  }

  async handle({ job }: AsyncContext<CountRequest>) {
    const runs = await this.counters.incr(`${counterPrefix}:${job.id}`);
    return { runs, workerId: instanceId };
  }

  // After the worker drained (beforeApplicationShutdown): no handler runs any more.
  async onApplicationShutdown(): Promise<void> {
    await this.counters.quit();
  }
}

@Module({
  imports: [
    ScheduleModule.forRoot(),
    AsyncEndpointsModule.forRoot({
      store: { type: 'redis', url: redisUrl, keyPrefix: env('KEY_PREFIX') },
      worker: {
        enabled: role === 'worker',
        workerId: instanceId,
        maximumConcurrency: Number(env('CONCURRENCY', '16')),
        batchSize: Number(env('BATCH_SIZE', '10')),
        maximumQueueSize: Number(env('MAX_QUEUE', '100000')),
      },
    }),
  ],
  controllers: role === 'api' ? [CountController] : [],
  providers: [
    ...(role === 'worker' ? [CountHandler] : []),
    {
      provide: APP_PIPE,
      useValue: new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }),
    },
  ],
})
class CounterAppModule {}

startTestProcess(CounterAppModule, {
  role,
  instanceId,
  port: Number(env('PORT', '0')),
  logger: ['error', 'warn'],
}).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
