import type { StoreKeys } from './redis-keys.js';

/** How old the other partitions' counts may be when a submit or a claim uses them. */
const MAX_AGE_MS = 1000;

/**
 * The other partitions' waiting and InProgress counts as last read, for the caps that span the store
 * (`worker.maximumQueueSize`, `jobManager.maxConcurrentJobs`): each partition's script checks its own
 * count plus these. With several partitions those caps are soft: concurrent submits or claims on
 * different partitions can exceed them by a little. With one partition there is nothing to read.
 */
export class PartitionCounts {
  private waiting: number[];
  private inProgress: number[];
  private readAt = -Infinity;
  private reading: Promise<void> | null = null;

  constructor(
    /** ZCARD through the store's calls (a Redis that is down answers StoreUnavailableError). */
    private readonly count: (key: string) => Promise<number>,
    private readonly keys: StoreKeys,
  ) {
    this.waiting = keys.partitions.map(() => 0);
    this.inProgress = keys.partitions.map(() => 0);
  }

  /**
   * The other partitions' waiting jobs, for a submit to partition `index` under `limit`. Read again
   * when the counts are old, or when the queue may be near its limit (then the cap is exact for the
   * submits of one process).
   */
  async othersWaiting(index: number, now: number, limit: number): Promise<number> {
    if (this.keys.partitions.length === 1) return 0;
    const nearLimit = sumExcept(this.waiting, -1) * 2 >= limit;
    await this.fresh(now, nearLimit);
    return sumExcept(this.waiting, index);
  }

  /** InProgress jobs over all partitions, as last read (plus what this process claimed since). */
  inProgressTotal(): number {
    return sumExcept(this.inProgress, -1);
  }

  /** InProgress jobs of one partition, as last read (plus what this process claimed since). */
  inProgressOf(index: number): number {
    return this.inProgress[index]!;
  }

  /** A claim under a concurrency cap starts with exact counts. */
  refresh(now: number): Promise<void> {
    if (this.keys.partitions.length === 1) return Promise.resolve();
    return this.fresh(now, true);
  }

  /** A job stored in partition `index` (counted until the next read). */
  noteCreated(index: number): void {
    this.waiting[index]!++;
  }

  /** Jobs leased in partition `index` (counted until the next read). */
  noteClaimed(index: number, count: number): void {
    this.waiting[index] = Math.max(0, this.waiting[index]! - count);
    this.inProgress[index]! += count;
  }

  private fresh(now: number, always: boolean): Promise<void> {
    if (!always && now - this.readAt < MAX_AGE_MS) return Promise.resolve();
    this.reading ??= this.read(now).finally(() => {
      this.reading = null;
    });
    return this.reading;
  }

  /** One ZCARD per index and partition, each to its partition's node. */
  private async read(now: number): Promise<void> {
    const counts = await Promise.all(
      this.keys.partitions.map((partition) =>
        Promise.all([
          this.count(partition.statusIndex.Queued),
          this.count(partition.statusIndex.Scheduled),
          this.count(partition.statusIndex.InProgress),
        ]),
      ),
    );
    this.waiting = counts.map(([queued, scheduled]) => queued + scheduled);
    this.inProgress = counts.map(([, , inProgress]) => inProgress);
    this.readAt = now;
  }
}

function sumExcept(counts: readonly number[], index: number): number {
  let sum = 0;
  for (let i = 0; i < counts.length; i++) if (i !== index) sum += counts[i]!;
  return sum;
}
