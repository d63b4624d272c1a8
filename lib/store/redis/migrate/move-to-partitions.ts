import type { Redis } from 'ioredis';
import { JOB_STATUSES, type JobStatus } from '../../../job/index.js';
import type { RedisKeys, StoreKeys } from '../redis-keys.js';
import { MIGRATION_BATCH, type MigrationTally } from './migration-tally.js';
import { LIVE_STATUSES, readV1Jobs, type V1Entry, type V1Job, type V1Keys } from './v1-jobs.js';

type Transaction = ReturnType<Redis['multi']>;

/**
 * More than one partition: every job moves from 0.1.0's keys to its partition's (partitionOf(id)),
 * its hash whole with its TTL (DUMP, RESTORE), with its index entries and its idempotency key, a
 * batch at a time: first written to the partitions (one transaction per partition, so one slot each),
 * then deleted from 0.1.0's keys. A run cut short between the two writes the same jobs again. 0.1.0's
 * store-wide keys go last.
 */
export async function moveToPartitions(
  client: Redis,
  v1: V1Keys,
  store: StoreKeys,
  tally: MigrationTally,
): Promise<void> {
  await carrySequence(client, v1, store);
  for (const status of JOB_STATUSES) {
    for (;;) {
      const flat = await client.zrange(v1.statusIndex[status], '0', String(MIGRATION_BATCH - 1), 'WITHSCORES');
      if (flat.length === 0) break;
      const scores = new Map<string, number>();
      for (let i = 0; i < flat.length; i += 2) scores.set(flat[i]!, Number(flat[i + 1]));
      const ids = [...scores.keys()];
      const entries = await readV1Jobs(client, v1, ids, scores, true);
      const jobs = entries.map((entry) => (typeof entry === 'string' ? null : entry));
      const mappings = await idempotencyMappings(client, v1, jobs);
      const partitions = new Map<RedisKeys, Transaction>();
      const into = (keys: RedisKeys) => partitions.get(keys) ?? partitions.set(keys, client.multi()).get(keys)!;
      entries.forEach((entry, i) => {
        if (entry === 'missing') return void tally.missing.push(ids[i]!);
        if (entry === 'unreadable') return void tally.unreadable.push(ids[i]!);
        const keys = store.partitionOf(entry.id);
        writeJob(into(keys), keys, entry, tally);
        const mapping = mappings.get(entry.id);
        if (!mapping) return;
        // Where the store looks the key up: the job's partition (a submission naming its id) and the
        // digest's (one with only the key). With one partition for both, one write.
        for (const target of new Set([keys, store.partitionOf(mapping.digest)])) {
          into(target).hset(target.idempotency, mapping.digest, entry.id);
          if (mapping.expiresAt !== null) {
            into(target).zadd(target.idempotencyExpiries, mapping.expiresAt, mapping.digest);
          }
        }
        tally.idempotencyKeys++;
      });
      await Promise.all([...partitions.values()].map((transaction) => transaction.exec()));
      const source = client.multi();
      entries.forEach((entry, i) => dropV1Entry(source, v1, ids[i]!, status, entry, mappings.get(ids[i]!)?.digest));
      await source.exec();
    }
  }
  // Entries of jobs that no status index named (gone) and 0.1.0's counters: nothing reads them now.
  await client.del(
    v1.waiting,
    v1.leases,
    v1.started,
    v1.idempotency,
    v1.idempotencyExpiries,
    v1.sequence,
    v1.recoveryLock,
  );
}

function writeJob(transaction: Transaction, keys: RedisKeys, job: V1Job, tally: MigrationTally): void {
  // The hash whole, with its time to live (0: none); REPLACE, as an interrupted run may have copied it.
  transaction.restore(keys.job(job.id), job.pttl === -1 ? 0 : Math.max(job.pttl, 1), job.dump!, 'REPLACE');
  transaction.zadd(keys.statusIndex[job.status], job.statusScore, job.id);
  tally.counts[job.status]++;
  if (!LIVE_STATUSES.includes(job.status)) return;
  if (!job.name || (job.status !== 'InProgress' && !job.waitingEntry)) {
    tally.unreadable.push(job.id);
    return;
  }
  transaction.sadd(keys.names, job.name);
  if (job.waitingEntry) {
    transaction.zadd(keys.waiting(job.name), job.dueAt!, job.waitingEntry);
  } else {
    transaction.zadd(keys.leases(job.name), job.leaseExpiresAt!, job.id);
    transaction.zadd(keys.started, Number(job.fields.startedAt ?? job.statusScore), job.id);
  }
}

/**
 * Takes a job out of 0.1.0's keys once it is written to its partition. A key the migration cannot
 * read stays where it is (the command names it); only its entry goes, so the walk moves on.
 */
function dropV1Entry(
  transaction: Transaction,
  v1: V1Keys,
  id: string,
  indexed: JobStatus,
  entry: V1Entry,
  digest: string | undefined,
): void {
  transaction.zrem(v1.statusIndex[indexed], id);
  if (entry === 'unreadable') return;
  transaction.del(v1.job(id));
  if (entry === 'missing') return void transaction.zrem(v1.leases, id).zrem(v1.started, id);
  if (entry.status !== indexed) transaction.zrem(v1.statusIndex[entry.status], id);
  if (entry.waitingEntry) transaction.zrem(v1.waiting, entry.waitingEntry);
  if (entry.status === 'InProgress') transaction.zrem(v1.leases, id).zrem(v1.started, id);
  if (digest) transaction.hdel(v1.idempotency, digest).zrem(v1.idempotencyExpiries, digest);
}

interface Mapping {
  digest: string;
  /** The end of the job's retention (a finished job's key), else null. */
  expiresAt: number | null;
}

/** The idempotency keys that point to these jobs (a key reused after a job's retention points to the newer job). */
async function idempotencyMappings(
  client: Redis,
  v1: V1Keys,
  jobs: readonly (V1Job | null)[],
): Promise<Map<string, Mapping>> {
  const withKey = jobs.filter((job): job is V1Job => Boolean(job?.fields.idempotencyDigest));
  const pipeline = client.pipeline();
  for (const job of withKey) {
    pipeline
      .hget(v1.idempotency, job.fields.idempotencyDigest!)
      .zscore(v1.idempotencyExpiries, job.fields.idempotencyDigest!);
  }
  const replies = withKey.length === 0 ? [] : ((await pipeline.exec()) ?? []);
  const mappings = new Map<string, Mapping>();
  withKey.forEach((job, i) => {
    const [[mapError, mappedId], [, expiresAt]] = [replies[2 * i]!, replies[2 * i + 1]!];
    if (mapError) throw mapError;
    if (mappedId !== job.id) return;
    mappings.set(job.id, {
      digest: job.fields.idempotencyDigest!,
      expiresAt: expiresAt === null ? null : Number(expiresAt),
    });
  });
  return mappings;
}

/**
 * Each partition's submission counter starts at 0.1.0's, so that a job submitted after the move sorts
 * after the moved ones due at the same time. Never lowers one (a run again after jobs were submitted).
 */
async function carrySequence(client: Redis, v1: V1Keys, store: StoreKeys): Promise<void> {
  const sequence = Number((await client.get(v1.sequence)) ?? 0);
  for (const keys of store.partitions) {
    if (Number((await client.get(keys.sequence)) ?? 0) < sequence) await client.set(keys.sequence, sequence);
  }
}
