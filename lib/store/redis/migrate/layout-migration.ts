import type { Redis } from 'ioredis';
import { JOB_STATUSES, type JobStatus } from '../../../job/index.js';
import { LAYOUT_VERSION, layoutV1Keys, migratingKey, StoreKeys, type RedisKeys } from '../redis-keys.js';
import { convertInPlace } from './convert-in-place.js';
import { emptyTally, type MigrationTally } from './migration-tally.js';
import { moveToPartitions } from './move-to-partitions.js';
import { layout2Source, V1Keys } from './source-jobs.js';

export type { MigrationTally } from './migration-tally.js';

/**
 * What a migration to a partition count starts from: 0.1.0's layout, or layout 2 with another
 * partition count (`partitions`); null when there is nothing to do.
 */
export type MigrationSource = { layout: '0.1.0' } | { layout: '2'; partitions: number } | null;

/** What is stored under a key prefix, for the migrate command to decide and to show. */
export interface LayoutSurvey {
  /** `<prefix>:meta` when a layout-2 store (or a finished migration) wrote it. */
  meta: { layout: string; partitions: number } | null;
  source: MigrationSource;
  /** Jobs in the source's status indexes (entries, some possibly past retention). */
  counts: Record<JobStatus, number>;
  idempotencyKeys: number;
  /** The source's leases not expired yet: a worker may still run those jobs. */
  liveLeases: number;
  /** Layout-2 workers whose registration has not expired: a store of the new version is running. */
  liveWorkers: string[];
}

/** What a migration of the store under `keyPrefix` to `partitions` partitions would start from, and what is there. */
export async function surveyLayout(
  client: Redis,
  keyPrefix: string,
  partitions: number,
  now: number,
): Promise<LayoutSurvey> {
  const v1 = new V1Keys(keyPrefix);
  const store = new StoreKeys(keyPrefix);
  const raw = await client.hgetall(store.meta);
  const meta = raw.layout ? { layout: raw.layout, partitions: Number(raw.partitions) } : null;
  // With one partition, layout 2 keeps 0.1.0's other keys under their names: only these two tell.
  const v1OnlyKeys = meta?.partitions === 1 ? [v1.waiting, v1.leases] : layoutV1Keys(keyPrefix);
  // A run cut short leaves its marker, which only the end of a run removes.
  const [v1Present, underWay, workers] = await Promise.all([
    client.exists(...v1OnlyKeys),
    client.exists(migratingKey(keyPrefix)),
    client.hgetall(store.workers),
  ]);
  const source = sourceOf(meta, v1Present > 0, underWay > 0, partitions);
  const found =
    source?.layout === '2' ? layout2Found(client, keyPrefix, source.partitions, now) : v1Found(client, v1, now);
  return {
    meta,
    source,
    ...(await found),
    liveWorkers: Object.entries(workers)
      .filter(([, value]) => Number(value.split(' ')[0]) > now)
      .map(([workerId]) => workerId),
  };
}

function sourceOf(
  meta: LayoutSurvey['meta'],
  v1Present: boolean,
  underWay: boolean,
  partitions: number,
): MigrationSource {
  if (v1Present) return { layout: '0.1.0' };
  // Also a move between counts cut short: the meta keeps the old count until the end.
  if (meta && meta.partitions !== partitions) return { layout: '2', partitions: meta.partitions };
  // A run cut short after its last move: before the meta, or after it but before its marker went.
  // Running the 0.1.0 conversion again finds nothing left to move and writes both.
  if (underWay) return { layout: '0.1.0' };
  return null;
}

type Found = Pick<LayoutSurvey, 'counts' | 'idempotencyKeys' | 'liveLeases'>;

async function v1Found(client: Redis, v1: V1Keys, now: number): Promise<Found> {
  const [idempotencyKeys, liveLeases, ...counts] = await Promise.all([
    client.hlen(v1.idempotency),
    client.zcount(v1.leases, `(${now}`, '+inf'),
    ...JOB_STATUSES.map((status) => client.zcard(v1.statusIndex[status])),
  ]);
  return { counts: countsOf(counts), idempotencyKeys, liveLeases };
}

async function layout2Found(client: Redis, keyPrefix: string, partitions: number, now: number): Promise<Found> {
  const found: Found = { counts: countsOf(JOB_STATUSES.map(() => 0)), idempotencyKeys: 0, liveLeases: 0 };
  for (const keys of new StoreKeys(keyPrefix, partitions).partitions) {
    const names = await client.smembers(keys.names);
    const [idempotencyKeys, ...counts] = await Promise.all([
      client.hlen(keys.idempotency),
      ...JOB_STATUSES.map((status) => client.zcard(keys.statusIndex[status])),
      ...names.map((name) => client.zcount(keys.leases(name), `(${now}`, '+inf')),
    ]);
    found.idempotencyKeys += idempotencyKeys;
    JOB_STATUSES.forEach((status, i) => (found.counts[status] += counts[i]!));
    found.liveLeases += counts.slice(JOB_STATUSES.length).reduce((sum, count) => sum + count, 0);
  }
  return found;
}

function countsOf(counts: readonly number[]): Record<JobStatus, number> {
  return Object.fromEntries(JOB_STATUSES.map((status, i) => [status, counts[i]])) as Record<JobStatus, number>;
}

/**
 * Converts the store under `keyPrefix` to layout 2 with `partitions` partitions, from 0.1.0's layout
 * (in place with one partition, moving every job to its partition with more) or from layout 2 with
 * another partition count (moving every job whose partition changes). Writes `<prefix>:meta` last, so
 * a store starts on the result only once it is whole; a run cut short before that runs again from the
 * start and finds moved jobs moved. `<prefix>:migrating` holds the partition count meanwhile: a run
 * again with another count would leave the jobs already moved where no store looks, so it is refused.
 * Assumes no process runs on the store (the command checks).
 */
export async function migrateLayout(
  client: Redis,
  keyPrefix: string,
  partitions: number,
  source: Exclude<MigrationSource, null> = { layout: '0.1.0' },
): Promise<MigrationTally> {
  const store = new StoreKeys(keyPrefix, partitions);
  const migrating = migratingKey(keyPrefix);
  const underWay = await client.get(migrating);
  if (underWay !== null && underWay !== String(partitions)) {
    throw new Error(
      `A migration of the store under key prefix '${keyPrefix}' to ${underWay} partition(s) was cut short, and jobs may ` +
        `already be in those partitions: run migrate again with --partitions ${underWay} to finish it.`,
    );
  }
  await client.set(migrating, String(partitions));
  const tally = emptyTally();
  if (source.layout === '2') {
    const targets = new Set(store.partitions.map((keys: RedisKeys) => keys.prefix));
    const old = new StoreKeys(keyPrefix, source.partitions).partitions;
    // Partitions kept first: a job moved into one must not be counted again as one that stays there.
    const sources = [
      ...old.filter((keys) => targets.has(keys.prefix)).map((keys) => layout2Source(keys, true)),
      ...old.filter((keys) => !targets.has(keys.prefix)).map((keys) => layout2Source(keys, false)),
    ];
    for (const from of sources) await moveToPartitions(client, from, store, tally);
  } else if (partitions === 1) {
    await convertInPlace(client, new V1Keys(keyPrefix), store.partitions[0]!, tally);
  } else {
    await moveToPartitions(client, new V1Keys(keyPrefix), store, tally);
  }
  await client.hset(store.meta, 'layout', LAYOUT_VERSION, 'partitions', String(partitions));
  await client.del(migrating);
  return tally;
}
