import { randomUUID } from 'node:crypto';
import type { RedisClient } from './redis-connections.js';
import { JobErrorCode } from '../../job/index.js';
import {
  assertPurgeableStatus,
  type PurgeJobsOptions,
  type RecoverJobsOptions,
  type RecoveryReport,
} from '../job-store.js';
import { ttlArg, type RedisCalls } from './redis-calls.js';
import type { RedisKeys, StoreKeys } from './redis-keys.js';

/** Jobs one recovery script handles, so that none blocks Redis for long. */
const RECOVERY_BATCH = 500;
/** Index entries one purge script looks at. */
const PURGE_BATCH = 500;

type RecoveryReply = [string[], string[], string[], number] | null;

/**
 * The recovery sweep, partition by partition (concurrently): reads the candidates (expired leases per
 * name, jobs started too long ago) and their names, then hands them to recoverJobs.lua with their keys
 * declared, in batches, under the partition's lock. Null when another process holds every lock.
 */
export async function recoverInBatches(
  calls: RedisCalls,
  client: RedisClient,
  keys: StoreKeys,
  options: RecoverJobsOptions,
): Promise<RecoveryReport | null> {
  const lockToken = randomUUID();
  const reports = await Promise.all(
    keys.partitions.map((partition, index) =>
      recoverPartition(calls, client, keys, partition, index, lockToken, options),
    ),
  );
  let report: RecoveryReport | null = null;
  for (const part of reports) {
    if (!part) continue;
    report ??= { requeued: [], exhausted: [], canceled: [], removedEntries: 0 };
    report.requeued.push(...part.requeued);
    report.exhausted.push(...part.exhausted);
    report.canceled.push(...part.canceled);
    report.removedEntries += part.removedEntries;
  }
  return report;
}

async function recoverPartition(
  calls: RedisCalls,
  client: RedisClient,
  keys: StoreKeys,
  partition: RedisKeys,
  index: number,
  lockToken: string,
  options: RecoverJobsOptions,
): Promise<RecoveryReport | null> {
  const read = <T>(request: () => Promise<T>) => calls.call(request, { readOnly: true });
  const report: RecoveryReport = { requeued: [], exhausted: [], canceled: [], removedEntries: 0 };
  // Candidates seen in an earlier batch and left (renewed meanwhile, another name): not asked for again.
  const seen = new Set<string>();
  for (;;) {
    const names = await calls.storedNames(partition);
    const expired = await Promise.all(
      names.map((name) =>
        read(() => client.zrangebyscore(partition.leases(name), '-inf', options.now, 'LIMIT', 0, RECOVERY_BATCH)),
      ),
    );
    const overdue = await read(() =>
      client.zrangebyscore(
        partition.started,
        '-inf',
        options.now - options.maxInProgressMs,
        'LIMIT',
        0,
        RECOVERY_BATCH,
      ),
    );
    const nameOf = new Map<string, string | null>();
    expired.forEach((ids, n) => ids.forEach((id) => !seen.has(id) && nameOf.set(id, names[n]!)));
    for (const id of overdue) if (!seen.has(id) && !nameOf.has(id)) nameOf.set(id, null);
    const ids = [...nameOf.keys()].slice(0, RECOVERY_BATCH);
    // The stored name decides (the one a lease entry was found under may be of an older job of that id).
    const stored = await Promise.all(
      ids.map((id) => read(() => client.hget(partition.job(id), 'name')).catch(() => null)),
    );
    const jobNames = ids.map((id, i) => stored[i] ?? nameOf.get(id) ?? null);
    const declared = [...new Set(jobNames.filter((name): name is string => name !== null))];
    const jobArgs = ids.flatMap((id, i) => [id, jobNames[i] === null ? 0 : declared.indexOf(jobNames[i]!) + 1]);
    const status = partition.statusIndex;
    const hints = await Promise.all(declared.map((name) => calls.headElsewhere(keys.partitions, index, name)));
    const reply = (await calls.run(
      'recoverJobs',
      [
        partition.recoveryLock,
        partition.started,
        status.Queued,
        status.InProgress,
        status.Completed,
        status.Failed,
        status.Canceled,
        partition.idempotency,
        partition.idempotencyExpiries,
        status.Scheduled,
        ...declared.flatMap((name) => [partition.waiting(name), partition.leases(name)]),
        ...ids.map((id) => partition.job(id)),
      ],
      [
        partition.prefix,
        index,
        options.now,
        options.maxInProgressMs,
        options.maxRecoveries,
        options.lockMs,
        lockToken,
        ttlArg(options.retention.completedTtlMs),
        ttlArg(options.retention.failedTtlMs),
        JobErrorCode.RecoveryExhausted,
        JobErrorCode.Unreadable,
        declared.length,
        ...jobArgs,
        ...declared,
        ...hints,
      ],
    )) as RecoveryReply;
    if (reply === null) return null;
    const [requeued, exhausted, canceled, removedEntries] = reply;
    report.requeued.push(...requeued);
    report.exhausted.push(...exhausted);
    report.canceled.push(...canceled);
    report.removedEntries += removedEntries;
    for (const id of ids) seen.add(id);
    if (
      nameOf.size < RECOVERY_BATCH &&
      expired.every((list) => list.length < RECOVERY_BATCH) &&
      overdue.length < RECOVERY_BATCH
    ) {
      return report;
    }
  }
}

/**
 * Deletes up to `limit` finished jobs, partition by partition: walks the status's index in retention order, a batch at a time, and hands each batch
 * to purgeJobs.lua with the jobs' keys declared; the script checks each again. With `dryRun`, plain
 * reads only.
 */
export async function purgeInBatches(
  calls: RedisCalls,
  client: RedisClient,
  keys: StoreKeys,
  options: PurgeJobsOptions,
): Promise<string[]> {
  assertPurgeableStatus(options.status);
  const purged: string[] = [];
  // One partition after the other: the limit stays exact.
  for (const partition of keys.partitions) await purgePartition(calls, client, partition, options, purged);
  return purged;
}

async function purgePartition(
  calls: RedisCalls,
  client: RedisClient,
  partition: RedisKeys,
  options: PurgeJobsOptions,
  purged: string[],
): Promise<void> {
  const index = partition.statusIndex[options.status];
  const read = <T>(request: () => Promise<T>) => calls.call(request, { readOnly: true });
  let offset = 0;
  while (purged.length < options.limit) {
    const ids = await read(() => client.zrange(index, String(offset), String(offset + PURGE_BATCH - 1)));
    if (ids.length === 0) return;
    if (options.dryRun) {
      const fields = await Promise.all(
        ids.map((id) => read(() => client.hmget(partition.job(id), 'status', 'completedAt', 'name')).catch(() => [])),
      );
      ids.forEach((id, i) => {
        const [status, completedAt, name] = fields[i]!;
        if (
          purged.length < options.limit &&
          status === options.status &&
          Number(completedAt) < options.finishedBefore &&
          (options.name === undefined || name === options.name)
        ) {
          purged.push(id);
        }
      });
      offset += ids.length;
    } else {
      const [deleted, removed] = (await calls.run(
        'purgeJobs',
        [index, partition.idempotency, partition.idempotencyExpiries, ...ids.map((id) => partition.job(id))],
        [options.status, options.finishedBefore, options.name ?? '', options.limit - purged.length, ...ids],
      )) as [string[], number];
      purged.push(...deleted);
      // Removed entries left the index: the next batch starts after the entries that were kept.
      offset += ids.length - removed;
    }
    if (ids.length < PURGE_BATCH) return;
  }
}
