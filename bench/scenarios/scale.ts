import { fork, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import type { RedisProbe } from '../support/redis-probe.js';
import { sleep, within } from '../support/stats.js';
import type { BenchPayload, QueueSystem } from '../systems/system.js';
import { submitAll } from './throughput.js';
import { stopChild } from '../support/child-process.js';

export interface ScaleConfig {
  jobs: number;
  inFlight: number;
  concurrency: number;
  payload: BenchPayload;
}

const WORKER_SCRIPT = new URL('../worker-process.js', import.meta.url);
const TIMEOUT_MS = 180_000;

/**
 * Processing rate of `processes` worker processes (each at `concurrency`) draining a backlog of
 * `jobs` on one Redis. Every process holds its first jobs at a gate until all are up, then the clock
 * starts; the end is when Redis counts all jobs completed.
 */
export async function scaleRound(
  system: QueueSystem,
  probe: RedisProbe,
  processes: number,
  config: ScaleConfig,
): Promise<number> {
  await probe.flush();
  const producer = await system.createProducer();
  await submitAll(producer, config);
  await producer.close();

  const children = Array.from({ length: processes }, () =>
    fork(WORKER_SCRIPT, [system.name, probe.url, String(config.concurrency)], { stdio: 'inherit' }),
  );
  try {
    await within(
      Promise.all(children.map((child) => nextMessage(child, 'holding'))),
      TIMEOUT_MS,
      `${system.name} workers start`,
    );
    const started = performance.now();
    for (const child of children) child.send({ type: 'go' });
    await within(waitForCompleted(probe, system.completedKey, config.jobs), TIMEOUT_MS, `${system.name} drain`);
    return config.jobs / ((performance.now() - started) / 1000);
  } finally {
    await Promise.all(children.map(stopChild));
  }
}

async function waitForCompleted(probe: RedisProbe, key: string, jobs: number): Promise<void> {
  while ((await probe.zcard(key)) < jobs) await sleep(5);
}

function nextMessage(child: ChildProcess, type: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: { type: string }) => {
      if (message.type !== type) return;
      child.off('message', onMessage);
      resolve();
    };
    child.on('message', onMessage);
    child.once('exit', (code) => reject(new Error(`worker process exited (${code}) before '${type}'`)));
  });
}
