import 'reflect-metadata';
import { type DynamicModule, Injectable, type INestApplicationContext, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import {
  AsyncEndpointsModule,
  AsyncEndpointsService,
  AsyncHandler,
  JobStore,
  type AsyncContext,
  type AsyncEndpointHandler,
  type AsyncEndpointsModuleOptions,
  type RedisStoreConfig,
} from '../../lib/index.js';
import type { BenchHandler, BenchPayload, Consumer, ConsumerOptions, Producer, QueueSystem } from './system.js';

const JOB_NAME = 'Noop';

/** The consumer of this process's handler; one consumer per process at a time. */
let currentHandler: BenchHandler = () => undefined;

@AsyncHandler(JOB_NAME)
@Injectable()
class NoopHandler implements AsyncEndpointHandler<BenchPayload, null> {
  async handle({ request }: AsyncContext<BenchPayload>): Promise<null> {
    await currentHandler(request);
    return null;
  }
}

@Module({})
class BenchModule {
  static forRoot(options: AsyncEndpointsModuleOptions): DynamicModule {
    return {
      module: BenchModule,
      imports: [ScheduleModule.forRoot(), AsyncEndpointsModule.forRoot(options)],
      providers: [NoopHandler],
    };
  }
}

/**
 * nestjs-async-endpoints on the Redis store, as an app would run it: a producer process with
 * `worker.enabled: false`, and worker processes. Defaults everywhere except the queue cap, which
 * must hold a 20,000-job backlog (the default is 1000), and the worker's concurrency.
 */
export class AsyncEndpointsSystem implements QueueSystem {
  readonly name = 'async-endpoints' as const;
  readonly completedKey = '{async-endpoints}:status:Completed';

  /** `store`: the Redis store's options; default `{ type: 'redis', url: redisUrl }` (the cluster scenario passes a Cluster). */
  constructor(
    redisUrl: string,
    private readonly store: RedisStoreConfig = { type: 'redis', url: redisUrl },
  ) {}

  async createProducer(): Promise<Producer> {
    const app = await this.boot({ enabled: false });
    const service = app.get(AsyncEndpointsService);
    return {
      submit: async (payload) => {
        await service.submit(JOB_NAME, payload);
      },
      close: () => app.close(),
    };
  }

  async createConsumer({ concurrency, handler, onCompleted }: ConsumerOptions): Promise<Consumer> {
    currentHandler = handler;
    const app = await this.boot({ enabled: true, maximumConcurrency: concurrency });
    // Counted where the worker learns that its completion is written, as BullMQ's worker emits
    // 'completed' once its moveToFinished call answered: the store instance the worker calls.
    const store = app.get(JobStore);
    const completeJob = store.completeJob.bind(store);
    store.completeJob = async (...args) => {
      const outcome = await completeJob(...args);
      if (outcome === 'completed') onCompleted();
      return outcome;
    };
    return { close: () => app.close() };
  }

  private boot(worker: AsyncEndpointsModuleOptions['worker']): Promise<INestApplicationContext> {
    return NestFactory.createApplicationContext(
      BenchModule.forRoot({
        store: this.store,
        worker: { ...worker, maximumQueueSize: 1_000_000 },
      }),
      { logger: ['error', 'warn'] },
    );
  }
}
