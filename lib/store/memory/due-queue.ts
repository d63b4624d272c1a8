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
 * One name's waiting jobs in the memory store, in a heap ordered by due time then submission order, so that a
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

  /** Takes off the head entry (head() found it current) and returns its job. */
  takeHead(): StoredJob {
    return this.jobs.get(this.heap.pop()!.id)!;
  }

  /** Drops the stale entries at the head; returns how many. */
  dropStaleHead(): number {
    const before = this.heap.size;
    this.head();
    return before - this.heap.size;
  }
}

/** Of the queues whose head is due, the one whose head is due first (then submitted first): a merge. */
export function firstDue(queues: readonly DueQueue[], now: number): DueQueue | undefined {
  let first: DueQueue | undefined;
  let firstHead: QueueEntry | undefined;
  for (const queue of queues) {
    const head = queue.head();
    if (!head || head.dueAt > now) continue;
    if (!firstHead || head.dueAt < firstHead.dueAt || (head.dueAt === firstHead.dueAt && head.seq < firstHead.seq)) {
      first = queue;
      firstHead = head;
    }
  }
  return first;
}
