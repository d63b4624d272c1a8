import { randomUUID } from 'node:crypto';
import { JobErrorCode } from '../../job/index.js';
import {
  assertPurgeableStatus,
  type PurgeJobsOptions,
  type RecoverJobsOptions,
  type RecoveryReport,
} from '../job-store.js';
import { ttlArg, type RedisCalls } from './redis-calls.js';
import type { RedisKeys } from './redis-keys.js';

/** Scripts of the recovery sweep handle this many jobs each, so that none blocks Redis for long. */
const RECOVERY_BATCH = 500;
/** Index entries one purge script looks at. */
const PURGE_BATCH = 1000;

type PurgeReply = [string[], number, 0 | 1];
type RecoveryReply = [string[], string[], string[], number, 0 | 1] | null;

/** Runs the sweep in batches under one lock token, until nothing is left or the lock is lost. */
export async function recoverInBatches(
  calls: RedisCalls,
  keys: RedisKeys,
  options: RecoverJobsOptions,
): Promise<RecoveryReport | null> {
  const lockToken = randomUUID();
  let report: RecoveryReport | null = null;
  for (;;) {
    const reply = (await calls.run('recoverJobs', keys.store, [
      options.now,
      options.maxInProgressMs,
      options.maxRecoveries,
      options.lockMs,
      lockToken,
      ttlArg(options.retention.completedTtlMs),
      ttlArg(options.retention.failedTtlMs),
      RECOVERY_BATCH,
      JobErrorCode.RecoveryExhausted,
      JobErrorCode.Unreadable,
    ])) as RecoveryReply;
    if (reply === null) return report;
    const [requeued, exhausted, canceled, removedEntries, more] = reply;
    report ??= { requeued: [], exhausted: [], canceled: [], removedEntries: 0 };
    report.requeued.push(...requeued);
    report.exhausted.push(...exhausted);
    report.canceled.push(...canceled);
    report.removedEntries += removedEntries;
    if (!more) return report;
  }
}

/** Walks the status's index in batches, one short script each, until `limit` jobs are deleted. */
export async function purgeInBatches(calls: RedisCalls, keys: RedisKeys, options: PurgeJobsOptions): Promise<string[]> {
  assertPurgeableStatus(options.status);
  const purged: string[] = [];
  let offset = 0;
  while (purged.length < options.limit) {
    const [ids, next, walked] = (await calls.run('purgeJobs', keys.store, [
      options.status,
      options.finishedBefore,
      offset,
      PURGE_BATCH,
      Math.min(options.limit - purged.length, PURGE_BATCH),
      options.now,
      options.dryRun ? 1 : 0,
    ])) as PurgeReply;
    purged.push(...ids);
    offset = next;
    if (walked) break;
  }
  return purged;
}
