import { Cluster } from 'ioredis';
import type { RedisClient, StoreLogger } from './redis-connections.js';
import { undeclaredKeysScriptShas } from './redis-scripts.js';

const MIN_REDIS_MAJOR = 7;

/** What the startup checks found; null where Redis did not say. */
export interface RedisServerFacts {
  redisVersion: string | null;
  evictionPolicy: string | null;
}

/**
 * Startup checks: a Redis recent enough for the scripts, and an eviction policy that never drops jobs.
 * Writes what it finds into `facts` as it goes, so that the health indicator shows the version of a
 * Redis too old for the store.
 */
export async function inspectServer(client: RedisClient, logger: StoreLogger, facts: RedisServerFacts): Promise<void> {
  const serverInfo = await readServerInfo(client);
  const redisVersion = /^redis_version:(\S+)/m.exec(serverInfo)?.[1] ?? null;
  // Dragonfly refuses undeclared keys: the scripts that claim (the one exception, docs/storage.md) are flagged for it.
  if (/^dragonfly_version:/m.test(serverInfo))
    for (const sha of undeclaredKeysScriptShas()) await client.call('SCRIPT', 'FLAGS', sha, 'allow-undeclared-keys');
  facts.redisVersion = redisVersion;
  const major = redisVersion === null ? NaN : Number.parseInt(redisVersion, 10);
  if (major < MIN_REDIS_MAJOR) {
    throw new Error(
      `The Redis job store needs Redis ${MIN_REDIS_MAJOR}.0 or later (its Lua scripts declare #!lua); this server runs ${redisVersion}.`,
    );
  }
  const evictionPolicy = await readEvictionPolicy(client, logger);
  facts.evictionPolicy = evictionPolicy;
  if (evictionPolicy !== null && evictionPolicy !== 'noeviction') {
    logger.warn(
      `Redis maxmemory-policy is '${evictionPolicy}': under memory pressure Redis may evict jobs, leases and idempotency keys. Set maxmemory-policy to noeviction.`,
    );
  }
}

/**
 * ioredis' own keyPrefix would prefix the keys we pass but not those the scripts build or the event
 * channel, splitting the store in two.
 */
export function assertNoClientKeyPrefix(client: RedisClient): void {
  const keyPrefix =
    client instanceof Cluster
      ? (client.options.keyPrefix ?? client.options.redisOptions?.keyPrefix)
      : client.options.keyPrefix;
  if (keyPrefix) {
    throw new Error(
      `The Redis job store does not support the ioredis keyPrefix option ('${keyPrefix}'); use the store's keyPrefix instead.`,
    );
  }
}

async function readServerInfo(client: RedisClient): Promise<string> {
  try {
    return await client.info('server');
  } catch {
    return '';
  }
}

/** CONFIG GET first; managed services that disable CONFIG still tell it through INFO memory. */
async function readEvictionPolicy(client: RedisClient, logger: StoreLogger): Promise<string | null> {
  let configError: Error;
  try {
    const [, policy] = (await client.config('GET', 'maxmemory-policy')) as string[];
    if (policy) return policy;
    configError = new Error('no value');
  } catch (error) {
    configError = error as Error;
  }
  try {
    const policy = /^maxmemory_policy:(\S+)/m.exec(await client.info('memory'))?.[1];
    if (policy) return policy;
  } catch {
    // Reported below with the CONFIG GET failure.
  }
  logger.warn(
    `Cannot read Redis maxmemory-policy (CONFIG GET: ${configError.message}); make sure it is noeviction, or Redis may evict jobs and leases.`,
  );
  return null;
}
