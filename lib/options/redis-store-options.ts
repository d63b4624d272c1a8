import { Cluster } from 'ioredis';
import { COMMAND_TIMEOUT_MS } from '../store/redis/redis-connections.js';
import { maskUrlPassword } from '../store/redis/redis-url.js';
import { isClusterNode } from './cluster-nodes.js';
import type { RedisStoreConfig } from './async-endpoints-options.js';

/** Partitions of a store on one Redis: one, the 0.1.0 layout, as fast as one node goes. */
export const SINGLE_NODE_PARTITIONS = 1;
/**
 * Partitions of a store on a Cluster: 12 divides evenly over 1, 2, 3, 4, 6 and 12 masters, so that
 * each master holds as many partitions as the others (see docs/storage.md).
 */
export const CLUSTER_PARTITIONS = 12;
export const MAX_PARTITIONS = 1024;

/** `store.partitions` when it is not given: 12 on a Cluster (`cluster`, or a `Cluster` client), else 1. */
export function defaultPartitions(store: { cluster?: unknown; client?: unknown }): number {
  return store.cluster !== undefined || store.client instanceof Cluster ? CLUSTER_PARTITIONS : SINGLE_NODE_PARTITIONS;
}

/** The problems of a `{ type: 'redis' }` store's options, each naming the option, its value and the rule. */
export function validateRedisStore(store: RedisStoreConfig, describe: (value: unknown) => string): string[] {
  const problems: string[] = [];
  const targets = (['url', 'client', 'cluster'] as const).filter((option) => store[option] !== undefined);
  if (targets.length > 1) {
    problems.push(
      `store.${targets.join(' and store.')}: give only one of them (store.url for one Redis, store.cluster for a Redis Cluster, store.client for a connection of your own)`,
    );
  }
  if (store.cluster !== undefined && store.options !== undefined) {
    problems.push(
      'store.options and store.cluster: ioredis options of a Cluster go in store.cluster.options (those of each node in its redisOptions)',
    );
  }
  if (store.url !== undefined && !/^rediss?:\/\//.test(String(store.url))) {
    const shown = typeof store.url === 'string' ? maskUrlPassword(store.url) : store.url;
    problems.push(`store.url = ${describe(shown)}: must start with redis:// or rediss://`);
  }
  if (store.keyPrefix !== undefined && !/^[^{}]*\{[^{}]+\}[^{}]*$/.test(String(store.keyPrefix))) {
    problems.push(
      `store.keyPrefix = ${describe(store.keyPrefix)}: must hold exactly one non-empty {hash tag}, such as '{async-endpoints}', so that all keys share one Redis Cluster slot`,
    );
  }
  if (store.cluster !== undefined) problems.push(...validateCluster(store.cluster, describe));
  const { partitions } = store;
  if (partitions !== undefined && (!Number.isInteger(partitions) || partitions < 1 || partitions > MAX_PARTITIONS)) {
    problems.push(`store.partitions = ${describe(partitions)}: must be an integer from 1 to ${MAX_PARTITIONS}`);
  }
  if (store.waitForReplicas !== undefined) problems.push(...validateReplicaWait(store, describe));
  return problems;
}

function validateCluster(cluster: unknown, describe: (value: unknown) => string): string[] {
  if (!isObject(cluster)) {
    return [`store.cluster = ${describe(cluster)}: must be { nodes: ['host:port', ...], options?: ClusterOptions }`];
  }
  const problems = unknownKeys(cluster, 'store.cluster', ['nodes', 'options']);
  const { nodes, options } = cluster;
  if (!Array.isArray(nodes) || nodes.length === 0) {
    problems.push(
      `store.cluster.nodes = ${describe(nodes)}: must be a non-empty array of seed nodes ('host:port' or { host, port })`,
    );
  } else {
    nodes.forEach((node, i) => {
      if (!isClusterNode(node)) {
        problems.push(
          `store.cluster.nodes[${i}] = ${describe(node)}: must be 'host:port' (port 1-65535) or { host: string, port: number }`,
        );
      }
    });
  }
  if (options !== undefined && !isObject(options)) {
    problems.push(`store.cluster.options = ${describe(options)}: must be an object of ioredis ClusterOptions`);
  }
  return problems;
}

function validateReplicaWait(store: RedisStoreConfig, describe: (value: unknown) => string): string[] {
  const wait: unknown = store.waitForReplicas;
  if (!isObject(wait)) {
    return [`store.waitForReplicas = ${describe(wait)}: must be { replicas: number, timeoutMs: number }`];
  }
  const problems = unknownKeys(wait, 'store.waitForReplicas', ['replicas', 'timeoutMs']);
  const { replicas, timeoutMs } = wait;
  if (!Number.isInteger(replicas) || (replicas as number) < 1) {
    problems.push(`store.waitForReplicas.replicas = ${describe(replicas)}: must be an integer of at least 1`);
  }
  // WAIT holds the command connection: it must answer before the connection's own command timeout.
  const commandTimeout =
    (store.cluster ? store.cluster.options?.redisOptions?.commandTimeout : store.options?.commandTimeout) ??
    COMMAND_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || (timeoutMs as number) < 1 || (timeoutMs as number) >= commandTimeout) {
    problems.push(
      `store.waitForReplicas.timeoutMs = ${describe(timeoutMs)}: must be an integer from 1 to ${commandTimeout - 1}, below the command timeout (${commandTimeout} ms)`,
    );
  }
  return problems;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function unknownKeys(value: Record<string, unknown>, path: string, allowed: readonly string[]): string[] {
  return Object.keys(value)
    .filter((key) => !allowed.includes(key))
    .map((key) => `${path}.${key}: there is no such option (allowed: ${allowed.join(', ')})`);
}
