// A process of the fault-injection suite (test/reliability/), run by plain `node` after
// test/support/node-processes.ts compiled it. `ROLE=api` serves `POST /api/work` (202, job `Work`) and
// `GET /jobs/:id` with workers off; `ROLE=worker` runs workers only. Every run of the `Work` handler
// pushes what it does onto the Redis list `RUNS_KEY`, through a connection of its own: a record of
// executions (`start`, `end`) with worker, pid, attempt and time, that nothing in the library can fake.
// What a job does is in its payload: wait `ms` (honouring its signal), or busy-loop `blockMs` on its
// first attempt (an event loop blocked past the lease), or SIGKILL its own process (`poison`).
// Timings come from the environment so that tests can make leases and sweeps short.
// It prints `READY {"port": <port or null>, "workerId": ..., "pid": ...}` once it serves.
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { Body, Controller, Injectable, Module, type OnApplicationShutdown, Post, ValidationPipe } from '@nestjs/common';
import { APP_PIPE } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { IsBoolean, IsInt, IsOptional, Max, Min } from 'class-validator';
import { Redis } from 'ioredis';
import {
  AsyncEndpoint,
  AsyncEndpointsModule,
  AsyncHandler,
  type AsyncContext,
  type AsyncEndpointHandler,
} from '../../../lib/index.js';
import { requiredEnv, startTestProcess } from './process-env.js';

const env = (name: string, fallback?: string): string => requiredEnv('fault-app', name, fallback);

const role = env('ROLE');
const redisUrl = env('REDIS_URL');
const runsKey = env('RUNS_KEY');
const instanceId = env('INSTANCE_ID', `${role}-${process.pid}`);

class WorkRequest {
  @IsInt() @Min(0) @Max(60_000) ms!: number;
  /** Busy-loop this long on attempt 1 instead of waiting: the event loop is blocked, no lease renewal. */
  @IsOptional() @IsInt() @Min(0) @Max(60_000) blockMs?: number;
  /** Kill this process with SIGKILL on every attempt. */
  @IsOptional() @IsBoolean() poison?: boolean;
}

/** One line of the execution record (JSON in the list `RUNS_KEY`). */
export interface Execution {
  /** One per handler run, so that a record sent twice (a resend after a reconnect) counts once. */
  run: string;
  phase: 'start' | 'end';
  job: string;
  worker: string;
  pid: number;
  attempt: number;
  at: number;
}

@Controller('api')
class WorkController {
  @Post('work')
  @AsyncEndpoint('Work')
  submit(@Body() _body: WorkRequest): void {}
}

@AsyncHandler('Work', { requestType: WorkRequest })
@Injectable()
class WorkHandler
  implements AsyncEndpointHandler<WorkRequest, { worker: string; attempt: number }>, OnApplicationShutdown
{
  private readonly records = new Redis(redisUrl, { maxRetriesPerRequest: null });

  constructor() {
    this.records.on('error', () => undefined);
  }

  async handle({ request, job, signal }: AsyncContext<WorkRequest>) {
    const run = randomUUID();
    await this.record(run, 'start', job.id, job.attempt);
    if (request.poison) process.kill(process.pid, 'SIGKILL');
    if (request.blockMs !== undefined && job.attempt === 1) {
      const until = Date.now() + request.blockMs;
      while (Date.now() < until) {
        // Busy: timers, I/O and lease renewal wait for this loop.
      }
    } else {
      await delay(request.ms, signal);
    }
    await this.record(run, 'end', job.id, job.attempt);
    return { worker: instanceId, attempt: job.attempt };
  }

  private async record(run: string, phase: Execution['phase'], jobId: string, attempt: number): Promise<void> {
    const execution: Execution = {
      run,
      phase,
      job: jobId,
      worker: instanceId,
      pid: process.pid,
      attempt,
      at: Date.now(),
    };
    await this.records.rpush(runsKey, JSON.stringify(execution));
  }

  // After the worker drained (beforeApplicationShutdown): no handler runs any more.
  async onApplicationShutdown(): Promise<void> {
    await this.records.quit();
  }
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

@Module({
  imports: [
    ScheduleModule.forRoot(),
    AsyncEndpointsModule.forRoot({
      store: { type: 'redis', url: redisUrl, keyPrefix: env('KEY_PREFIX') },
      worker: {
        enabled: role === 'worker',
        workerId: instanceId,
        maximumConcurrency: Number(env('CONCURRENCY', '8')),
        maximumQueueSize: 100_000,
        shutdownTimeoutMs: Number(env('SHUTDOWN_TIMEOUT_MS', '30000')),
      },
      jobManager: { jobClaimTimeoutMs: Number(env('LEASE_MS', '30000')) },
      recovery: {
        enableDistributedJobRecovery: role === 'worker',
        recoveryCheckIntervalSeconds: Number(env('SWEEP_SECONDS', '15')),
        maximumRetries: Number(env('MAX_RECOVERIES', '2')),
      },
    }),
  ],
  controllers: role === 'api' ? [WorkController] : [],
  providers: [
    ...(role === 'worker' ? [WorkHandler] : []),
    {
      provide: APP_PIPE,
      useValue: new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }),
    },
  ],
})
class FaultAppModule {}

startTestProcess(FaultAppModule, {
  role,
  instanceId,
  port: Number(env('PORT', '0')),
  logger: ['error', 'warn', 'log'],
}).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
