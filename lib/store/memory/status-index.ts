import { JOB_STATUSES, type JobStatus } from '../../job/index.js';
import { InvalidCursorError, type JobPage, type ListJobsOptions } from '../job-store.js';
import type { StoredJob } from './stored-job.js';

/**
 * One status's entries, oldest first, in parallel arrays (no object per entry: cheaper to add and to
 * collect): when the job entered the status (a finished job: its completedAt), a tie-breaker unique
 * per entry (the job's `statusSeq` while the entry is its current one), and the job's id.
 */
interface EntryList {
  at: number[];
  seq: number[];
  ids: string[];
}

/** How many entries one `list` call looks at: a filtered listing returns a short page rather than scan all. */
const MAX_SCAN = 10_000;
const CURSOR = /^m(-?\d+)\.(\d+)$/;

/**
 * The memory store's jobs per status, in the order they entered it: what listings page through
 * (newest first) and purges walk (oldest finished first). Entering a status appends an entry; leaving
 * it leaves the entry stale (its job's status or statusSeq no longer match), dropped by compaction once
 * the stale ones outnumber the live ones, so an entry costs amortised O(1) per transition.
 */
export class StatusIndex {
  private readonly entries = Object.fromEntries(
    JOB_STATUSES.map((status) => [status, { at: [], seq: [], ids: [] }]),
  ) as unknown as Record<JobStatus, EntryList>;
  private sequence = 0;

  constructor(
    private readonly jobs: ReadonlyMap<string, StoredJob>,
    private readonly counts: Readonly<Record<JobStatus, number>>,
  ) {}

  /** Records that `job` entered `status` (already set on it) at `at`. */
  enter(job: StoredJob, at: number): void {
    const seq = ++this.sequence;
    job.statusSeq = seq;
    const list = this.entries[job.status];
    const last = list.at.length - 1;
    // Times only grow unless a caller passes an earlier `now`: then the entry goes where it belongs.
    if (last < 0 || list.at[last]! <= at) {
      list.at.push(at);
      list.seq.push(seq);
      list.ids.push(job.id);
    } else {
      const index = this.firstAfter(list, at, seq);
      list.at.splice(index, 0, at);
      list.seq.splice(index, 0, seq);
      list.ids.splice(index, 0, job.id);
    }
    if (list.at.length > 2 * this.counts[job.status] + 1024) this.compact(job.status);
  }

  /** A page of one status, newest first; see JobStore.listJobs. */
  list(options: ListJobsOptions): JobPage {
    const list = this.entries[options.status];
    let index = list.at.length - 1;
    if (options.cursor) {
      const [at, seq] = decodeCursor(options.cursor);
      index = this.firstAfter(list, at, seq - 1) - 1;
    }
    const jobs: StoredJob[] = [];
    let last = -1;
    for (let scanned = 0; index >= 0 && jobs.length < options.limit && scanned < MAX_SCAN; index--, scanned++) {
      last = index;
      const job = this.current(list, index, options.status);
      if (!job) continue;
      if (options.name !== undefined && job.name !== options.name) continue;
      if (options.owner !== undefined && job.owner !== options.owner) continue;
      jobs.push(job);
    }
    return { jobs, nextCursor: index >= 0 && last >= 0 ? `m${list.at[last]}.${list.seq[last]}` : null };
  }

  /**
   * The jobs of a status in the order they entered it, oldest first. Deleting jobs meanwhile is safe
   * (only `enter` changes the index).
   */
  *oldestFirst(status: JobStatus): Generator<StoredJob> {
    const list = this.entries[status];
    for (let index = 0; index < list.at.length; index++) {
      const job = this.current(list, index, status);
      if (job) yield job;
    }
  }

  /** The job of entry `index`, when the entry is still its current one. */
  private current(list: EntryList, index: number, status: JobStatus): StoredJob | undefined {
    const job = this.jobs.get(list.ids[index]!);
    return job && job.status === status && job.statusSeq === list.seq[index] ? job : undefined;
  }

  /** The index of the first entry ordered after (at, seq). */
  private firstAfter(list: EntryList, at: number, seq: number): number {
    let low = 0;
    let high = list.at.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (list.at[mid]! < at || (list.at[mid] === at && list.seq[mid]! <= seq)) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  private compact(status: JobStatus): void {
    const list = this.entries[status];
    const kept: EntryList = { at: [], seq: [], ids: [] };
    for (let index = 0; index < list.at.length; index++) {
      if (this.current(list, index, status) === undefined) continue;
      kept.at.push(list.at[index]!);
      kept.seq.push(list.seq[index]!);
      kept.ids.push(list.ids[index]!);
    }
    this.entries[status] = kept;
  }
}

function decodeCursor(cursor: string): [number, number] {
  const match = CURSOR.exec(cursor);
  if (!match) {
    throw new InvalidCursorError(cursor);
  }
  return [Number(match[1]), Number(match[2])];
}
