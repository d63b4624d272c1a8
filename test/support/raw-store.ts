import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import { JobStore, type MemoryStoreConfig, type RedisStoreConfig } from '../../lib/index.js';

/**
 * Everything the app's store holds, as one string: for Redis, every value of every key under the
 * store's prefix, read with a separate connection (what anyone with access to Redis sees); for the
 * memory store, its internal job records. For asserting what is (not) persisted.
 */
export async function rawStoreContents(
  app: INestApplication,
  config: MemoryStoreConfig | RedisStoreConfig,
): Promise<string> {
  if (config.type === 'redis') return dumpRedis(config.url!, config.keyPrefix!);
  let store: unknown = app.get(JobStore);
  // Decorators (instrumentation) keep the real store as `inner`.
  while (store && typeof store === 'object' && 'inner' in store) store = (store as { inner: unknown }).inner;
  const jobs = (store as { table?: { jobs?: Map<string, unknown> } }).table?.jobs;
  if (!(jobs instanceof Map)) throw new Error('rawStoreContents: not a memory store');
  return JSON.stringify([...jobs.values()]);
}

async function dumpRedis(url: string, prefix: string): Promise<string> {
  const redis = new Redis(url, { lazyConnect: true });
  await redis.connect();
  try {
    const parts: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) parts.push(key, await dumpKey(redis, key));
    } while (cursor !== '0');
    return parts.join('\n');
  } finally {
    redis.disconnect();
  }
}

async function dumpKey(redis: Redis, key: string): Promise<string> {
  switch (await redis.type(key)) {
    case 'string':
      return (await redis.get(key)) ?? '';
    case 'hash':
      return JSON.stringify(await redis.hgetall(key));
    case 'zset':
      return JSON.stringify(await redis.zrange(key, '0', '-1', 'WITHSCORES'));
    case 'set':
      return JSON.stringify(await redis.smembers(key));
    case 'list':
      return JSON.stringify(await redis.lrange(key, '0', '-1'));
    default:
      return '';
  }
}
