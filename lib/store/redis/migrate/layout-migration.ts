import type { Redis } from 'ioredis';
import { JOB_STATUSES, type JobStatus } from '../../../job/index.js';
import { LAYOUT_VERSION, layoutV1Keys, StoreKeys } from '../redis-keys.js';
import { convertInPlace } from './convert-in-place.js';
import { emptyTally, type MigrationTally } from './migration-tally.js';
import { moveToPartitions } from './move-to-partitions.js';
import { V1Keys } from './source-jobs.js';

export type { MigrationTally } from './migration-tally.js';

/** What is stored under a key prefix, for the migrate command to decide and to show. */
export interface LayoutSurvey {
  /** `<prefix>:meta` when a layout-2 store (or a finished migration) wrote it. */
  meta: { layout: string; partitions: number } | null;
  /** Whether 0.1.0 data is there to convert, or a migration cut short to finish. */
  hasV1Data: boolean;
  /** Jobs in 0.1.0's status indexes (entries, some possibly past retention). */
  counts: Record<JobStatus, number>;
  idempotencyKeys: number;
  /** 0.1.0 leases not expired yet: a 0.1.0 worker may still run those jobs. */
  liveV1Leases: number;
  /** Layout-2 workers whose registration has not expired: a store of the new version is running. */
  liveWorkers: string[];
}

/** Holds the partition count of a migration under way: see migrateLayout. */
function migratingKey(keyPrefix: string): string {
  return `${keyPrefix}:migrating`;
}

export async function surveyLayout(client: Redis, keyPrefix: string, now: number): Promise<LayoutSurvey> {
  const v1 = new V1Keys(keyPrefix);
  const store = new StoreKeys(keyPrefix);
  const meta = await client.hgetall(store.meta);
  const partitions = Number(meta.partitions);
  // With one partition, layout 2 keeps 0.1.0's other keys under their names: only these two tell.
  const v1OnlyKeys = meta.layout && partitions === 1 ? [v1.waiting, v1.leases] : layoutV1Keys(keyPrefix);
  const [present, idempotencyKeys, liveV1Leases, workers, ...counts] = await Promise.all([
    // A run cut short leaves its marker, which only the end of a run removes.
    client.exists(...v1OnlyKeys, migratingKey(keyPrefix)),
    client.hlen(v1.idempotency),
    client.zcount(v1.leases, `(${now}`, '+inf'),
    client.hgetall(store.workers),
    ...JOB_STATUSES.map((status) => client.zcard(v1.statusIndex[status])),
  ]);
  return {
    meta: meta.layout ? { layout: meta.layout, partitions } : null,
    hasV1Data: present > 0,
    counts: Object.fromEntries(JOB_STATUSES.map((status, i) => [status, counts[i]])) as Record<JobStatus, number>,
    idempotencyKeys,
    liveV1Leases,
    liveWorkers: Object.entries(workers)
      .filter(([, value]) => Number(value.split(' ')[0]) > now)
      .map(([workerId]) => workerId),
  };
}

/**
 * Converts 0.1.0's Redis layout under `keyPrefix` to layout 2 with `partitions` partitions: in place
 * with one, moving every job to its partition with more. Writes `<prefix>:meta` last, so a store
 * starts on the result only once it is whole; a run cut short before that runs again from the start
 * and finds converted jobs converted. `<prefix>:migrating` holds the partition count meanwhile: a run
 * again with another count would leave the jobs already moved where no store looks, so it is refused.
 * Assumes no 0.1.0 process runs (the command checks).
 */
export async function migrateLayout(client: Redis, keyPrefix: string, partitions: number): Promise<MigrationTally> {
  const v1 = new V1Keys(keyPrefix);
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
  if (partitions === 1) {
    await convertInPlace(client, v1, store.partitions[0]!, tally);
  } else {
    await moveToPartitions(client, v1, store, tally);
  }
  await client.hset(store.meta, 'layout', LAYOUT_VERSION, 'partitions', String(partitions));
  await client.del(migrating);
  return tally;
}
