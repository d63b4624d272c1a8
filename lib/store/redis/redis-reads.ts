import type { RedisClient } from './redis-connections.js';
import { JOB_STATUSES, type Job, type JobStatus } from '../../job/index.js';
import { InvalidCursorError, type JobPage, type JobStats, type ListJobsOptions, type NameStats } from '../job-store.js';
import type { RedisCalls } from './redis-calls.js';
import { decodeJob, UnreadableJobError } from './redis-job-codec.js';
import type { RedisKeys, StoreKeys } from './redis-keys.js';

/** Index entries one listing call looks at per partition when it filters by name or owner. */
const FILTERED_SCAN = 200;

type StatsReply = [number[], (number | string | null)[]];

/**
 * Counts per status and per name, partition by partition (concurrently): each partition's names set
 * is read first, then jobStats.lua counts with their keys declared. Workers come from the store-wide
 * registrations; expired ones are dropped on the way.
 */
export async function readStats(
  calls: RedisCalls,
  client: RedisClient,
  keys: StoreKeys,
  now: number,
): Promise<JobStats> {
  const counts = Object.fromEntries(JOB_STATUSES.map((status) => [status, 0])) as Record<JobStatus, number>;
  const names: Record<string, NameStats> = {};
  const entry = (name: string) => (names[name] ??= { waiting: 0, inProgress: 0, oldestWaitingAgeMs: null, workers: 0 });
  let oldestDueAt = Infinity;
  const [partitions, workers] = await Promise.all([
    Promise.all(keys.partitions.map((partition) => partitionStats(calls, partition, now))),
    calls.call(() => client.hgetall(keys.workers), { readOnly: true }),
  ]);
  for (const { reply, partitionNames } of partitions) {
    const [statusCounts, perName] = reply;
    STATS_ORDER.forEach((status, i) => (counts[status] += Number(statusCounts[i]!)));
    partitionNames.forEach((name, n) => {
      const [waiting, leased, head] = perName.slice(3 * n, 3 * n + 3);
      if (Number(waiting) === 0 && Number(leased) === 0) return;
      const stats = entry(name);
      stats.waiting += Number(waiting);
      stats.inProgress += Number(leased);
      if (head !== null && head !== undefined && Number(head) <= now) {
        const age = now - Number(head);
        stats.oldestWaitingAgeMs = Math.max(stats.oldestWaitingAgeMs ?? 0, age);
        oldestDueAt = Math.min(oldestDueAt, Number(head));
      }
    });
  }
  const expired: string[] = [];
  for (const [workerId, value] of Object.entries(workers)) {
    const registration = parseRegistration(value);
    if (!registration || registration.expiresAt <= now) {
      expired.push(workerId);
      continue;
    }
    for (const name of registration.names) entry(name).workers++;
  }
  if (expired.length > 0) client.hdel(keys.workers, ...expired).catch(() => undefined);
  return {
    counts,
    waiting: counts.Queued + counts.Scheduled,
    inProgress: counts.InProgress,
    oldestWaitingAgeMs: oldestDueAt === Infinity ? null : now - oldestDueAt,
    names,
  };
}

/** The order of jobStats.lua's counts: its first six keys. */
const STATS_ORDER: readonly JobStatus[] = ['Queued', 'Scheduled', 'InProgress', 'Completed', 'Failed', 'Canceled'];

async function partitionStats(calls: RedisCalls, partition: RedisKeys, now: number) {
  const partitionNames = await calls.storedNames(partition);
  const status = partition.statusIndex;
  const reply = (await calls.run(
    'jobStats',
    [
      ...STATS_ORDER.map((name) => status[name]),
      partition.idempotency,
      partition.idempotencyExpiries,
      partition.names,
      ...partitionNames.flatMap((name) => [partition.waiting(name), partition.leases(name)]),
    ],
    [now, ...partitionNames],
  )) as StatsReply;
  return { reply, partitionNames };
}

/** A registration as registerWorker stores it: `<expiresAt> <names as JSON>`. */
export function encodeRegistration(expiresAt: number, names: readonly string[]): string {
  return `${expiresAt} ${JSON.stringify(names)}`;
}

function parseRegistration(value: string): { expiresAt: number; names: string[] } | null {
  const space = value.indexOf(' ');
  try {
    const names: unknown = JSON.parse(value.slice(space + 1));
    const expiresAt = Number(value.slice(0, space));
    if (!Array.isArray(names) || !Number.isFinite(expiresAt)) return null;
    return { expiresAt, names: names.filter((name): name is string => typeof name === 'string') };
  } catch {
    return null;
  }
}

/** An index position: score as Redis wrote it, and member. */
type Position = [score: string, id: string];

/** Newest first: higher score first, then (as Redis orders equal scores backwards) the higher member. */
function isAfter(a: Position, b: Position): boolean {
  const [sa, sb] = [Number(a[0]), Number(b[0])];
  return sa < sb || (sa === sb && a[1] < b[1]);
}

function encodeCursor(position: Position): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

function decodeCursor(cursor: string): Position | null {
  try {
    const position: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString());
    // The score goes to ZRANGE BYSCORE: anything but a finite number would be a Redis error (a 500).
    if (
      Array.isArray(position) &&
      position.length === 2 &&
      position.every((part) => typeof part === 'string') &&
      position[0] !== '' &&
      Number.isFinite(Number(position[0])) &&
      position[1] !== ''
    ) {
      return position as Position;
    }
  } catch {
    // Reported below.
  }
  return null;
}

/**
 * A page of one status, newest first, over every partition, with plain reads: each partition's index
 * from the cursor on (ZRANGE BYSCORE REV), merged, then the jobs read. The cursor is the position of
 * the last entry looked at, so no job of the listing comes twice and none that stays is skipped. A
 * partition that returned a full batch bounds how far the merge may go (its next entries are unknown).
 */
export async function listJobs(
  calls: RedisCalls,
  client: RedisClient,
  keys: StoreKeys,
  options: ListJobsOptions,
): Promise<JobPage> {
  if (options.limit <= 0) return { jobs: [], nextCursor: null };
  const after = options.cursor ? decodeCursor(options.cursor) : null;
  if (options.cursor && !after) throw new InvalidCursorError(options.cursor);
  const filtered = options.name !== undefined || options.owner !== undefined;
  const batch = filtered ? Math.max(options.limit, FILTERED_SCAN) : options.limit;
  const read = <T>(request: () => Promise<T>) => calls.call(request, { readOnly: true });

  const perPartition = await Promise.all(
    keys.partitions.map((partition) => partitionEntries(read, client, partition, options.status, after, batch)),
  );
  // Not past the last entry of a partition that may have more.
  let frontier: Position | null = null;
  for (const { entries, full } of perPartition) {
    const last = entries.at(-1)?.position;
    if (full && last && (!frontier || isAfter(frontier, last))) frontier = last;
  }
  const merged = perPartition
    .flatMap(({ entries }) => entries)
    .filter(({ position }) => !frontier || !isAfter(position, frontier))
    .sort((a, b) => (isAfter(a.position, b.position) ? 1 : isAfter(b.position, a.position) ? -1 : 0));

  const jobs: Job[] = [];
  let examined = 0;
  while (examined < merged.length && jobs.length < options.limit) {
    const chunk = merged.slice(examined, examined + (filtered ? FILTERED_SCAN : options.limit - jobs.length));
    const fields = await Promise.all(
      chunk.map(({ position, partition }) => read(() => client.hgetall(partition.job(position[1]))).catch(() => ({}))),
    );
    for (let i = 0; i < chunk.length && jobs.length < options.limit; i++) {
      examined++;
      const job = decodeListed(fields[i]!);
      if (!job || job.status !== options.status) continue;
      if (options.name !== undefined && job.name !== options.name) continue;
      if (options.owner !== undefined && job.owner !== options.owner) continue;
      jobs.push(job);
    }
  }
  const more = examined < merged.length || frontier !== null;
  const lastSeen = examined > 0 ? merged[examined - 1]!.position : null;
  return { jobs, nextCursor: more && lastSeen ? encodeCursor(lastSeen) : null };
}

type Read = <T>(request: () => Promise<T>) => Promise<T>;

/**
 * Up to `batch` entries of one partition's index after the cursor, newest first; `full` when there may
 * be more. Entries at the cursor's own score that were listed already are skipped (jobs submitted in
 * the same millisecond share a score).
 */
async function partitionEntries(
  read: Read,
  client: RedisClient,
  partition: RedisKeys,
  status: JobStatus,
  after: Position | null,
  batch: number,
): Promise<{ entries: { position: Position; partition: RedisKeys }[]; full: boolean }> {
  const index = partition.statusIndex[status];
  const max = after ? after[0] : '+inf';
  const entries: { position: Position; partition: RedisKeys }[] = [];
  for (let offset = 0; ; offset += batch) {
    const flat = await read(() =>
      client.zrange(index, max, '-inf', 'BYSCORE', 'REV', 'LIMIT', offset, batch, 'WITHSCORES'),
    );
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const position: Position = [flat[i + 1]!, flat[i]!];
      if (!after || isAfter(position, after)) entries.push({ position, partition });
    }
    if (flat.length / 2 < batch) return { entries, full: false };
    if (entries.length >= batch) return { entries: entries.slice(0, batch), full: true };
  }
}

/** A listed job, or null for one gone (expired) or unreadable meanwhile. */
function decodeListed(fields: Record<string, string>): Job | null {
  if (Object.keys(fields).length === 0) return null;
  try {
    return decodeJob(fields);
  } catch (error) {
    if (error instanceof UnreadableJobError) return null;
    throw error;
  }
}
