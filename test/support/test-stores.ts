import { randomUUID } from 'node:crypto';
import type { MemoryStoreConfig, RedisStoreConfig } from '../../lib/index.js';
import { RedisJobStore, type RedisStoreOptions } from '../../lib/store/redis/redis-job-store.js';
import { partitionOf } from '../../lib/store/redis/redis-partitions.js';
import type { ConformanceTarget } from '../store-conformance/job-store.conformance.js';
import { RecordingLogger } from './recording-logger.js';
import { RedisServer } from './redis-server.js';

export type StoreKind = 'memory' | 'redis';

/** Every store the e2e suites run on, for `describe.each(STORE_KINDS)`. */
export const STORE_KINDS: readonly StoreKind[] = ['memory', 'redis'];

/**
 * The store options of one suite: the memory store, or a Redis store on a redis-server that this
 * helper starts on first use (one per suite) and stops in dispose(). Each call to options() gets its
 * own key prefix, so that every app starts with an empty store on the shared server.
 */
export class TestStores {
  private server: Promise<RedisServer> | null = null;

  constructor(readonly kind: StoreKind) {}

  async options(): Promise<MemoryStoreConfig | RedisStoreConfig> {
    if (this.kind === 'memory') return { type: 'memory' };
    this.server ??= RedisServer.start();
    return { type: 'redis', url: (await this.server).url, keyPrefix: `{e2e-${randomUUID()}}` };
  }

  async dispose(): Promise<void> {
    const server = this.server;
    this.server = null;
    await (await server?.catch(() => null))?.dispose();
  }
}

/**
 * `count` new job ids in one partition of a Redis store split into `partitions` (a job's partition
 * follows from its id, docs/storage.md): claim order holds within a partition only. In `partition`
 * when given, else in that of the first id drawn.
 */
export function idsInOnePartition(partitions: number, count: number, partition?: number): string[] {
  const ids: string[] = [];
  while (ids.length < count) {
    const id = randomUUID();
    partition ??= partitionOf(id, partitions);
    if (partitionOf(id, partitions) === partition) ids.push(id);
  }
  return ids;
}

let conformanceStores = 0;

/**
 * The conformance suite's target for a Redis store: each case gets a started store under a key prefix
 * of its own, `{<prefix>-<n>}`. `options` (a server's url, a Cluster, a partition count) are read when
 * a case starts, once the suite's servers run; `partitions` is the count the store splits into (a
 * Cluster's default is 12), for the cases that need ids in one partition.
 */
export function redisConformanceTarget(
  prefix: string,
  options: () => RedisStoreOptions,
  partitions = 1,
): ConformanceTarget {
  return {
    async create() {
      const store = new RedisJobStore({
        ...options(),
        keyPrefix: `{${prefix}-${++conformanceStores}}`,
        logger: new RecordingLogger(),
      });
      await store.init();
      return store;
    },
    destroy: (store) => store.close(),
    ...(partitions > 1 && { idsInOnePartition: (count: number) => idsInOnePartition(partitions, count) }),
  };
}
