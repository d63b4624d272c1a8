import { performance } from 'node:perf_hooks';
import type { RedisProbe } from '../support/redis-probe.js';
import { deferred, percentile, sleep, within } from '../support/stats.js';
import type { BenchPayload, Consumer, Producer, QueueSystem } from '../systems/system.js';

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

interface Lane {
  system: QueueSystem;
  producer: Producer;
  consumer: Consumer;
  started: ReturnType<typeof deferred<number>>;
  completed: ReturnType<typeof deferred<void>>;
  samples: number[];
}

/**
 * Sequential jobs to an idle worker at concurrency 1: time from calling submit to the handler's start.
 * The systems take turns job by job (in alternating order), each with its own idle producer and
 * worker on the same redis-server, so that both sample the same moments of a shared, noisy machine: a
 * stall of a few seconds moves both distributions, not one.
 */
export async function latencyRound(
  systems: readonly QueueSystem[],
  probe: RedisProbe,
  config: LatencyConfig,
): Promise<Map<QueueSystem, LatencyRound>> {
  await probe.flush();
  const lanes: Lane[] = [];
  try {
    for (const system of systems) {
      const lane = { system, samples: [], started: deferred<number>(), completed: deferred() } as unknown as Lane;
      lane.consumer = await system.createConsumer({
        concurrency: 1,
        handler: () => lane.started.resolve(performance.now()),
        onCompleted: () => lane.completed.resolve(),
      });
      // Closed in `finally` even when its producer fails to start.
      lanes.push(lane);
      lane.producer = await system.createProducer();
    }
    for (let i = 0; i < config.warmup + config.jobs; i++) {
      for (const lane of i % 2 === 0 ? lanes : [...lanes].reverse()) {
        lane.started = deferred<number>();
        lane.completed = deferred();
        await sleep(config.idleMs);
        const submittedAt = performance.now();
        await lane.producer.submit(config.payload);
        const startedAt = await within(lane.started.promise, 10_000, `${lane.system.name} pickup`);
        await within(lane.completed.promise, 10_000, `${lane.system.name} completion`);
        if (i >= config.warmup) lane.samples.push(startedAt - submittedAt);
      }
    }
  } finally {
    for (const lane of lanes) {
      await lane.producer?.close();
      await lane.consumer?.close();
    }
  }
  return new Map(
    lanes.map((lane) => [
      lane.system,
      { p50Ms: percentile(lane.samples, 50), p99Ms: percentile(lane.samples, 99), maxMs: Math.max(...lane.samples) },
    ]),
  );
}
