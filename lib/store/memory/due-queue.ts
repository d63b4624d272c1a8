import { isWaiting } from '../../job/index.js';
import { MinHeap } from './min-heap.js';
import type { StoredJob } from './stored-job.js';

interface QueueEntry {
  id: string;
  dueAt: number;
  seq: number;
  version: number;
}

/**
 * The memory store's waiting jobs, in a heap ordered by due time then submission order, so that a
 * claim never scans all jobs. An entry is stale once its job left the queue or re-entered it (a newer
 * queueVersion): stale entries are dropped when they reach the head.
 */
export class DueQueue {
  private readonly heap = new MinHeap<QueueEntry>((a, b) => a.dueAt - b.dueAt || a.seq - b.seq);

  constructor(private readonly jobs: ReadonlyMap<string, StoredJob>) {}

  enqueue(job: StoredJob, dueAt: number): void {
    job.queueVersion++;
    this.heap.push({ id: job.id, dueAt, seq: job.seq, version: job.queueVersion });
  }

  /** The first queue entry that still points to a waiting job, dropping stale entries on the way. */
  head(): QueueEntry | undefined {
    for (let entry = this.heap.peek(); entry; entry = this.heap.peek()) {
      const job = this.jobs.get(entry.id);
      if (job && isWaiting(job.status) && job.queueVersion === entry.version) return entry;
      this.heap.pop();
    }
    return undefined;
  }

  /** The waiting job at the head of the queue when it is due (left in the queue: see takeHead). */
  nextDue(now: number): StoredJob | undefined {
    const head = this.head();
    return head && head.dueAt <= now ? this.jobs.get(head.id) : undefined;
  }

  /** Takes the head entry off, once nextDue's job is claimed. */
  takeHead(): void {
    this.heap.pop();
  }

  /** Drops the stale entries at the head; returns how many. */
  dropStaleHead(): number {
    const before = this.heap.size;
    this.head();
    return before - this.heap.size;
  }
}
