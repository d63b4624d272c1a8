import type { Redis } from 'ioredis';
import type { JobStatus } from '../../../job/index.js';
import type { RedisKeys } from '../redis-keys.js';
import { LIVE_STATUSES, readSourceJobs, TERMINAL_STATUSES, type SourceEntry, type V1Keys } from './source-jobs.js';
import { MIGRATION_BATCH, type MigrationTally } from './migration-tally.js';

/**
 * One partition: layout 2 keeps 0.1.0's keys under the same prefix but for two. Each live job's
 * entry moves from the single waiting (or leases) zset to its name's, its status index entry is
 * scored by the time it entered the status, and its name joins the names set. Terminal jobs,
 * idempotency keys, the sequence and the started zset stay as they are. Every step writes what the
 * job's hash says, so a run cut short can run again.
 */
export async function convertInPlace(client: Redis, v1: V1Keys, keys: RedisKeys, tally: MigrationTally): Promise<void> {
  for (const status of LIVE_STATUSES) {
    let cursor = '0';
    do {
      const [next, flat] = await client.zscan(v1.statusIndex[status], cursor, 'COUNT', MIGRATION_BATCH);
      cursor = next;
      const ids = flat.filter((_, i) => i % 2 === 0);
      if (ids.length === 0) continue;
      const jobs = await readSourceJobs(client, v1, ids, new Map(), false);
      const transaction = client.multi();
      ids.forEach((id, i) => convertJob(transaction, v1, keys, status, id, jobs[i]!, tally));
      await transaction.exec();
    } while (cursor !== '0');
  }
  // What is left in them belongs to no live job (0.1.0's claim dropped such entries as it met them).
  await client.del(v1.waiting, v1.leases);
  const terminal = await Promise.all(TERMINAL_STATUSES.map((status) => client.zcard(v1.statusIndex[status])));
  TERMINAL_STATUSES.forEach((status, i) => (tally.counts[status] += terminal[i]!));
}

function convertJob(
  transaction: ReturnType<Redis['multi']>,
  v1: V1Keys,
  keys: RedisKeys,
  indexed: JobStatus,
  id: string,
  job: SourceEntry,
  tally: MigrationTally,
): void {
  if (job === 'unreadable') return void tally.unreadable.push(id);
  if (job === 'missing' || job.status !== indexed) {
    // A missing job, or one whose hash says it is in another status (where it is converted): stale.
    transaction.zrem(v1.statusIndex[indexed], id);
    if (job === 'missing') {
      transaction.zrem(v1.leases, id).zrem(v1.started, id);
      tally.missing.push(id);
    }
    return;
  }
  transaction.zadd(keys.statusIndex[job.status], job.statusScore, id);
  tally.counts[job.status]++;
  if (!job.name || (job.status !== 'InProgress' && !job.waitingEntry)) {
    tally.unreadable.push(id);
    return;
  }
  transaction.sadd(keys.names, job.name);
  if (job.waitingEntry) {
    transaction.zadd(keys.waiting(job.name), job.dueAt!, job.waitingEntry).zrem(v1.waiting, job.waitingEntry);
  } else {
    transaction.zadd(keys.leases(job.name), job.leaseExpiresAt!, id).zrem(v1.leases, id);
  }
}
