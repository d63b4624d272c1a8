import { randomUUID } from 'node:crypto';
import type { MemoryStoreConfig, RedisStoreConfig } from '../../lib/index.js';
import { partitionOf } from '../../lib/store/redis/redis-partitions.js';
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
 * follows from its id, docs/storage.md): claim order holds within a partition only.
 */
export function idsInOnePartition(partitions: number, count: number): string[] {
  const ids = [randomUUID()];
  const partition = partitionOf(ids[0]!, partitions);
  while (ids.length < count) {
    const id = randomUUID();
    if (partitionOf(id, partitions) === partition) ids.push(id);
  }
  return ids;
}
