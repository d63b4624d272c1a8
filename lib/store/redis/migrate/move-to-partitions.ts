import type { Redis } from 'ioredis';
import { JOB_STATUSES, type JobStatus } from '../../../job/index.js';
import type { RedisKeys, StoreKeys } from '../redis-keys.js';
import { MIGRATION_BATCH, type MigrationTally } from './migration-tally.js';
import { LIVE_STATUSES, readSourceJobs, type SourceEntry, type SourceJob, type SourceKeys } from './source-jobs.js';

type Transaction = ReturnType<Redis['multi']>;

/**
 * Moves every job of a source (0.1.0's keys, or a partition of a layout-2 store with another
 * partition count) to its partition of `store` (partitionOf(id)): its hash whole with its TTL (DUMP,
 * RESTORE), its index entries and its idempotency key, a batch at a time: first written to the
 * partitions (one transaction per partition, so one slot each), then deleted from the source. A run
 * cut short between the two writes the same jobs again. A job whose partition has the source's prefix
 * stays. The source's keys that hold no job go last.
 */
export async function moveToPartitions(
  client: Redis,
  source: SourceKeys,
  store: StoreKeys,
  tally: MigrationTally,
): Promise<void> {
  await carrySequence(client, source, store);
  for (const status of JOB_STATUSES) {
    // Moved entries leave the index; those that stay are skipped by rank.
    for (let staying = 0; ;) {
      const [from, to] = [String(staying), String(staying + MIGRATION_BATCH - 1)];
      const flat = await client.zrange(source.statusIndex[status], from, to, 'WITHSCORES');
      if (flat.length === 0) break;
      const scores = new Map<string, number>();
      for (let i = 0; i < flat.length; i += 2) scores.set(flat[i]!, Number(flat[i + 1]));
      const ids = [...scores.keys()];
      const entries = await readSourceJobs(client, source, ids, scores, true);
      const jobs = entries.map((entry) => (typeof entry === 'string' ? null : entry));
      const mappings = await idempotencyMappings(client, source, jobs);
      const partitions = new Map<RedisKeys, Transaction>();
      const into = (keys: RedisKeys) => partitions.get(keys) ?? partitions.set(keys, client.multi()).get(keys)!;
      const drop = client.multi();
      entries.forEach((entry, i) => {
        const id = ids[i]!;
        const keys = store.partitionOf(id);
        const stays = keys.prefix === source.prefix;
        if (entry === 'missing' || entry === 'unreadable') {
          (entry === 'missing' ? tally.missing : tally.unreadable).push(id);
          if (entry === 'unreadable' && stays) staying++;
          else dropEntry(drop, source, id, status, entry, undefined);
          return;
        }
        if (stays) {
          staying++;
          tally.counts[entry.status]++;
        } else {
          writeJob(into(keys), keys, entry, tally);
        }
        const mapping = mappings.get(id);
        if (mapping) {
          // Where the store looks the key up: the job's partition (a submission naming its id) and the
          // digest's (one with only the key). With one partition for both, one write.
          const targets = new Set([keys, store.partitionOf(mapping.digest)]);
          for (const target of targets) {
            into(target).hset(target.idempotency, mapping.digest, id);
            if (mapping.expiresAt !== null)
              into(target).zadd(target.idempotencyExpiries, mapping.expiresAt, mapping.digest);
          }
          tally.idempotencyKeys++;
          if ([...targets].some((target) => target.prefix === source.prefix)) mapping.kept = true;
        }
        if (!stays) dropEntry(drop, source, id, status, entry, mapping && !mapping.kept ? mapping.digest : undefined);
      });
      await Promise.all([...partitions.values()].map((transaction) => transaction.exec()));
      await drop.exec();
    }
  }
  if (source.names) {
    // Per-name zsets still holding entries of jobs that are gone (an empty zset is gone by itself).
    const names = await client.smembers(source.names);
    const perName = names.flatMap((name) => [source.waitingOf(name), source.leasesOf(name)]);
    if (perName.length > 0) await client.del(...perName);
  }
  if (source.leftovers.length > 0) await client.del(...source.leftovers);
}

function writeJob(transaction: Transaction, keys: RedisKeys, job: SourceJob, tally: MigrationTally): void {
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
 * Takes a job out of its source once it is written to its partition. A key the migration cannot read
 * stays where it is (the command names it); only its entry goes, so the walk moves on.
 */
function dropEntry(
  transaction: Transaction,
  source: SourceKeys,
  id: string,
  indexed: JobStatus,
  entry: SourceEntry,
  digest: string | undefined,
): void {
  transaction.zrem(source.statusIndex[indexed], id);
  if (entry === 'unreadable') return;
  transaction.del(source.job(id));
  if (entry === 'missing') return void transaction.zrem(source.started, id);
  if (entry.status !== indexed) transaction.zrem(source.statusIndex[entry.status], id);
  if (entry.waitingEntry) transaction.zrem(source.waitingOf(entry.name ?? ''), entry.waitingEntry);
  if (entry.status === 'InProgress') transaction.zrem(source.leasesOf(entry.name ?? ''), id).zrem(source.started, id);
  if (digest) transaction.hdel(source.idempotency, digest).zrem(source.idempotencyExpiries, digest);
}

interface Mapping {
  digest: string;
  /** Written to the source's own partition too (it is a target): not to be dropped there. */
  kept?: boolean;
  /** The end of the job's retention (a finished job's key), else null. */
  expiresAt: number | null;
}

/** The idempotency keys that point to these jobs (a key reused after a job's retention points to the newer job). */
async function idempotencyMappings(
  client: Redis,
  source: SourceKeys,
  jobs: readonly (SourceJob | null)[],
): Promise<Map<string, Mapping>> {
  const withKey = jobs.filter((job): job is SourceJob => Boolean(job?.fields.idempotencyDigest));
  const pipeline = client.pipeline();
  for (const job of withKey) {
    pipeline
      .hget(source.idempotency, job.fields.idempotencyDigest!)
      .zscore(source.idempotencyExpiries, job.fields.idempotencyDigest!);
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
 * Each partition's submission counter starts at least at the source's, so that a job submitted after
 * the move sorts after the moved ones due at the same time. Never lowers one.
 */
async function carrySequence(client: Redis, source: SourceKeys, store: StoreKeys): Promise<void> {
  const sequence = Number((await client.get(source.sequence)) ?? 0);
  for (const keys of store.partitions) {
    if (Number((await client.get(keys.sequence)) ?? 0) < sequence) await client.set(keys.sequence, sequence);
  }
}
