import type { RedisClient } from './redis-connections.js';
import { LAYOUT_VERSION, layoutV1Keys, migratingKey, StoreKeys } from './redis-keys.js';

/**
 * The partition count recorded under the key prefix (`<keyPrefix>:meta`, which checkLayout writes at a
 * store's first start and checks at every other), or null when none is: the count a store that reads
 * the store must be built with. One key read: on a Cluster too.
 */
export async function recordedPartitions(client: Pick<RedisClient, 'hget'>, keyPrefix: string): Promise<number | null> {
  const partitions = Number(await client.hget(new StoreKeys(keyPrefix).meta, 'partitions'));
  return Number.isInteger(partitions) && partitions >= 1 ? partitions : null;
}

/**
 * The layout under the key prefix: written by the first store that starts on it; a later start
 * with another partition count, or on 0.1.0's layout, is refused (the migrate command converts).
 * With `record` false (the operator CLI), a prefix where no layout is recorded is left as it is: the
 * partition count stays for the apps' first start to choose.
 */
export async function checkLayout(client: RedisClient, keys: StoreKeys, record = true): Promise<void> {
  const count = String(keys.partitions.length);
  if ((await client.exists(migratingKey(keys.prefix))) > 0) {
    throw new Error(
      `A \`npx nestjs-async-endpoints migrate\` run on the Redis store under key prefix '${keys.prefix}' is under way or was cut short: jobs may be half moved. ` +
        'Let it finish, or run it again with the same --partitions to finish it, then start again.',
    );
  }
  let meta = await client.hgetall(keys.meta);
  if (Object.keys(meta).length === 0) {
    if ((await client.exists(...layoutV1Keys(keys.prefix))) > 0) {
      throw new Error(
        `The Redis store under key prefix '${keys.prefix}' holds data in the layout of nestjs-async-endpoints 0.1.0. ` +
          'Stop the 0.1.0 processes and run `npx nestjs-async-endpoints migrate` to convert it, then start again.',
      );
    }
    if (!record) return;
    // Both fields in one transaction: a store starting at the same moment reads both or neither, never
    // a layout without its partition count (which it would refuse).
    const written = await client
      .multi()
      .hsetnx(keys.meta, 'layout', LAYOUT_VERSION)
      .hsetnx(keys.meta, 'partitions', count)
      .hgetall(keys.meta)
      .exec();
    const [error, stored] = written?.[2] ?? [new Error('the transaction was discarded'), null];
    if (error) throw error;
    meta = stored as Record<string, string>;
  }
  if (meta.layout !== LAYOUT_VERSION) {
    throw new Error(
      `The Redis store under key prefix '${keys.prefix}' has layout '${meta.layout}', which this version does not read (it reads layout ${LAYOUT_VERSION}).`,
    );
  }
  if (meta.partitions !== count) {
    throw new Error(
      `store.partitions = ${count}, but the Redis store under key prefix '${keys.prefix}' was written with ${meta.partitions} partitions. ` +
        `Set store.partitions to ${meta.partitions}, or stop every process and run \`npx nestjs-async-endpoints migrate\` to move the jobs to ${count} partitions.`,
    );
  }
}
