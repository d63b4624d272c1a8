import { performance } from 'node:perf_hooks';
import type { RedisProbe } from '../support/redis-probe.js';
import { deferred, percentile, sleep, within } from '../support/stats.js';
import type { BenchPayload, QueueSystem } from '../systems/system.js';

export interface LatencyConfig {
  jobs: number;
  warmup: number;
  /** Pause after each completion, so that every job meets an idle, waiting worker. */
  idleMs: number;
  payload: BenchPayload;
}

export interface LatencyRound {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Sequential jobs to an idle worker at concurrency 1: time from calling submit to the handler's start. */
export async function latencyRound(system: QueueSystem, probe: RedisProbe, config: LatencyConfig): Promise<LatencyRound> {
  await probe.flush();
  let started = deferred<number>();
  let completed = deferred();
  const consumer = await system.createConsumer({
    concurrency: 1,
    handler: () => started.resolve(performance.now()),
    onCompleted: () => completed.resolve(),
  });
  const producer = await system.createProducer();
  const samples: number[] = [];
  try {
    for (let i = 0; i < config.warmup + config.jobs; i++) {
      started = deferred<number>();
      completed = deferred();
      await sleep(config.idleMs);
      const submittedAt = performance.now();
      await producer.submit(config.payload);
      const startedAt = await within(started.promise, 10_000, `${system.name} pickup`);
      await within(completed.promise, 10_000, `${system.name} completion`);
      if (i >= config.warmup) samples.push(startedAt - submittedAt);
    }
  } finally {
    await producer.close();
    await consumer.close();
  }
  return { p50Ms: percentile(samples, 50), p99Ms: percentile(samples, 99), maxMs: Math.max(...samples) };
}
