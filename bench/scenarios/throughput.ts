import { performance } from 'node:perf_hooks';
import { commandsBetween, redisWrites, type RedisProbe } from '../support/redis-probe.js';
import { deferred, within } from '../support/stats.js';
import type { BenchPayload, Producer, QueueSystem } from '../systems/system.js';

export interface ThroughputConfig {
  jobs: number;
  inFlight: number;
  concurrency: number;
  payload: BenchPayload;
}

export interface ThroughputRound {
  submitPerSecond: number;
  processPerSecond: number;
  endToEndPerSecond: number;
  /** Redis cost per completed job, from the submit-then-process run. */
  cost: {
    commandsPerJob: number;
    roundTripsPerJob: number;
    submitRoundTripsPerJob: number;
    processRoundTripsPerJob: number;
    memoryBytesPerJob: number;
    /** CPU time per job of the benchmark process (producer and worker) and of redis-server, in µs. */
    nodeCpuMicrosPerJob: number;
    redisCpuMicrosPerJob: number;
    /** The same, of the submit phase alone. */
    submitNodeCpuMicrosPerJob: number;
    submitRedisCpuMicrosPerJob: number;
    commandsByName: Record<string, number>;
  };
}

const PHASE_TIMEOUT_MS = 180_000;

/** Submits `jobs` jobs, `inFlight` at a time. */
export async function submitAll(
  producer: Producer,
  config: Pick<ThroughputConfig, 'jobs' | 'inFlight' | 'payload'>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < config.jobs) {
      next++;
      await producer.submit(config.payload);
    }
  };
  await Promise.all(Array.from({ length: Math.min(config.inFlight, config.jobs) }, lane));
}

/**
 * One round for one system on an empty Redis:
 * 1. submit all jobs with no worker running (submit rate);
 * 2. start one worker at `concurrency`, let it take its first jobs, then time the drain (processing rate);
 *    Redis commands, round trips and memory of steps 1 and 2 give the cost per job;
 * 3. on an emptied Redis again, submit with the worker running from the start (end to end).
 */
export async function throughputRound(
  system: QueueSystem,
  probe: RedisProbe,
  config: ThroughputConfig,
): Promise<ThroughputRound> {
  await probe.flush();
  const base = await probe.snapshot();

  // 1. Submit.
  const producer = await system.createProducer();
  const cpuBefore = process.cpuUsage();
  const redisCpuBefore = (await probe.snapshot()).cpuSeconds;
  redisWrites.reset();
  const submitStarted = performance.now();
  await within(submitAll(producer, config), PHASE_TIMEOUT_MS, `${system.name} submit`);
  const submitMs = performance.now() - submitStarted;
  const submitWrites = redisWrites.count;
  const submitCpu = process.cpuUsage(cpuBefore);
  const submitRedisCpuSeconds = (await probe.snapshot()).cpuSeconds - redisCpuBefore;
  await producer.close();

  // 2. Process the backlog. The handler holds the first `concurrency` jobs until the clock starts, so
  // that the worker's boot is not timed.
  const gate = deferred();
  const holding = deferred();
  const drained = deferred();
  let held = 0;
  let open = false;
  let completed = 0;
  redisWrites.reset();
  const consumer = await system.createConsumer({
    concurrency: config.concurrency,
    handler: async () => {
      if (open) return;
      if (++held === Math.min(config.concurrency, config.jobs)) holding.resolve();
      await gate.promise;
    },
    onCompleted: () => {
      if (++completed === config.jobs) drained.resolve();
    },
  });
  await within(holding.promise, PHASE_TIMEOUT_MS, `${system.name} worker start`);
  const processStarted = performance.now();
  open = true;
  gate.resolve();
  await within(drained.promise, PHASE_TIMEOUT_MS, `${system.name} processing`);
  const processMs = performance.now() - processStarted;
  const processWrites = redisWrites.count;
  const cpu = process.cpuUsage(cpuBefore);
  const redisCpuSeconds = (await probe.snapshot()).cpuSeconds - redisCpuBefore;
  await consumer.close();
  const after = await probe.snapshot();
  const commands = commandsBetween(base, after);

  // 3. End to end.
  await probe.flush();
  const endToEndMs = await endToEnd(system, config);

  const perJob = (value: number) => value / config.jobs;
  return {
    submitPerSecond: config.jobs / (submitMs / 1000),
    processPerSecond: config.jobs / (processMs / 1000),
    endToEndPerSecond: config.jobs / (endToEndMs / 1000),
    cost: {
      commandsPerJob: perJob(commands.total),
      roundTripsPerJob: perJob(submitWrites + processWrites),
      submitRoundTripsPerJob: perJob(submitWrites),
      processRoundTripsPerJob: perJob(processWrites),
      memoryBytesPerJob: perJob(after.usedMemory - base.usedMemory),
      nodeCpuMicrosPerJob: perJob(cpu.user + cpu.system),
      redisCpuMicrosPerJob: perJob(redisCpuSeconds * 1e6),
      submitNodeCpuMicrosPerJob: perJob(submitCpu.user + submitCpu.system),
      submitRedisCpuMicrosPerJob: perJob(submitRedisCpuSeconds * 1e6),
      commandsByName: Object.fromEntries(
        Object.entries(commands.byCommand)
          .sort(([, a], [, b]) => b - a)
          .map(([name, calls]) => [name, Math.round(perJob(calls) * 100) / 100]),
      ),
    },
  };
}

/** From the first submit to the last completion, the worker running throughout. */
async function endToEnd(system: QueueSystem, config: ThroughputConfig): Promise<number> {
  const drained = deferred();
  let completed = 0;
  const consumer = await system.createConsumer({
    concurrency: config.concurrency,
    handler: () => undefined,
    onCompleted: () => {
      if (++completed === config.jobs) drained.resolve();
    },
  });
  const producer = await system.createProducer();
  const started = performance.now();
  await within(submitAll(producer, config), PHASE_TIMEOUT_MS, `${system.name} end-to-end submit`);
  await within(drained.promise, PHASE_TIMEOUT_MS, `${system.name} end-to-end processing`);
  const elapsed = performance.now() - started;
  await producer.close();
  await consumer.close();
  return elapsed;
}
