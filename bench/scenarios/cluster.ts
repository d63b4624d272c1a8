import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import type { RedisCluster } from '../../test/support/redis-cluster.js';
import { deferred, within } from '../support/stats.js';
import { AsyncEndpointsSystem } from '../systems/async-endpoints.js';
import type { BenchPayload } from '../systems/system.js';
import { submitAll } from './throughput.js';

export interface ClusterConfig {
  jobs: number;
  inFlight: number;
  concurrency: number;
  payload: BenchPayload;
}

export interface ClusterRound {
  submitPerSecond: number;
  processPerSecond: number;
  /** Per master (by port): its share of the commands the masters processed over the round. */
  commandShares: Record<string, number>;
}

const PHASE_TIMEOUT_MS = 180_000;

/**
 * The throughput scenario on one store: submit `jobs` with no worker (submit rate), then drain them
 * with one worker (processing rate). `nodes` are the Redis nodes serving the store (one, or a
 * Cluster's masters), emptied first; the share of the commands each served is read from INFO stats.
 */
export async function clusterRound(
  system: AsyncEndpointsSystem,
  nodes: readonly number[],
  config: ClusterConfig,
): Promise<ClusterRound> {
  const clients = nodes.map((port) => new Redis({ port, host: '127.0.0.1' }));
  try {
    await Promise.all(clients.map((client) => client.flushall()));
    const before = await Promise.all(clients.map(commandsProcessed));

    const producer = await system.createProducer();
    const submitStarted = performance.now();
    await within(submitAll(producer, config), PHASE_TIMEOUT_MS, 'cluster submit');
    const submitMs = performance.now() - submitStarted;
    await producer.close();

    const drained = deferred();
    let completed = 0;
    const consumer = await system.createConsumer({
      concurrency: config.concurrency,
      handler: () => undefined,
      onCompleted: () => {
        if (++completed === config.jobs) drained.resolve();
      },
    });
    const processStarted = performance.now();
    await within(drained.promise, PHASE_TIMEOUT_MS, 'cluster processing');
    const processMs = performance.now() - processStarted;
    await consumer.close();

    const after = await Promise.all(clients.map(commandsProcessed));
    const served = after.map((count, i) => count - before[i]!);
    const total = served.reduce((sum, count) => sum + count, 0);
    return {
      submitPerSecond: config.jobs / (submitMs / 1000),
      processPerSecond: config.jobs / (processMs / 1000),
      commandShares: Object.fromEntries(nodes.map((port, i) => [String(port), served[i]! / total])),
    };
  } finally {
    for (const client of clients) client.disconnect();
  }
}

/** The masters of a cluster, by port. */
export async function masterPorts(cluster: RedisCluster): Promise<number[]> {
  return (await cluster.masters()).map((master) => master.port);
}

async function commandsProcessed(client: Redis): Promise<number> {
  return Number(/^total_commands_processed:(\d+)/m.exec(await client.info('stats'))?.[1] ?? 0);
}
