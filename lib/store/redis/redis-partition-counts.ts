import type { Redis } from 'ioredis';
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
    private readonly client: Pick<Redis, 'zcard'>,
    private readonly keys: StoreKeys,
  ) {
    this.waiting = keys.partitions.map(() => 0);
    this.inProgress = keys.partitions.map(() => 0);
  }

  async othersWaiting(index: number, now: number): Promise<number> {
    if (this.keys.partitions.length === 1) return 0;
    await this.fresh(now);
    return sumExcept(this.waiting, index);
  }

  async othersInProgress(index: number, now: number): Promise<number> {
    if (this.keys.partitions.length === 1) return 0;
    await this.fresh(now);
    return sumExcept(this.inProgress, index);
  }

  private fresh(now: number): Promise<void> {
    if (now - this.readAt < MAX_AGE_MS) return Promise.resolve();
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
          this.client.zcard(partition.statusIndex.Queued),
          this.client.zcard(partition.statusIndex.Scheduled),
          this.client.zcard(partition.statusIndex.InProgress),
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
