import { JOB_STATUSES, type JobStatus } from '../../job/index.js';
import type { JobPage, ListJobsOptions } from '../job-store.js';
import type { StoredJob } from './stored-job.js';

interface IndexEntry {
  /** When the job entered the status (for a finished job: its completedAt). */
  at: number;
  /** Tie-breaker, unique per entry: the job's `statusSeq` while the entry is its current one. */
  seq: number;
  id: string;
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
  private readonly entries = Object.fromEntries(JOB_STATUSES.map((status) => [status, []])) as unknown as Record<
    JobStatus,
    IndexEntry[]
  >;
  private sequence = 0;

  constructor(
    private readonly jobs: ReadonlyMap<string, StoredJob>,
    private readonly counts: Readonly<Record<JobStatus, number>>,
  ) {}

  /** Records that `job` entered `status` (already set on it) at `at`. */
  enter(job: StoredJob, at: number): void {
    const entry = { at, seq: ++this.sequence, id: job.id };
    job.statusSeq = entry.seq;
    const list = this.entries[job.status];
    const last = list[list.length - 1];
    // Times only grow unless a caller passes an earlier `now`: then the entry goes where it belongs.
    if (last === undefined || last.at <= at) list.push(entry);
    else list.splice(this.firstAfter(list, at, entry.seq), 0, entry);
    if (list.length > 2 * this.counts[job.status] + 1024) this.compact(job.status);
  }

  /** A page of one status, newest first; see JobStore.listJobs. */
  list(options: ListJobsOptions): JobPage {
    const list = this.entries[options.status];
    let index = list.length - 1;
    if (options.cursor) {
      const [at, seq] = decodeCursor(options.cursor);
      index = this.firstAfter(list, at, seq - 1) - 1;
    }
    const jobs: StoredJob[] = [];
    let last: IndexEntry | undefined;
    for (let scanned = 0; index >= 0 && jobs.length < options.limit && scanned < MAX_SCAN; index--, scanned++) {
      last = list[index]!;
      const job = this.current(last, options.status);
      if (!job) continue;
      if (options.name !== undefined && job.name !== options.name) continue;
      if (options.owner !== undefined && job.owner !== options.owner) continue;
      jobs.push(job);
    }
    return { jobs, nextCursor: index >= 0 && last ? `m${last.at}.${last.seq}` : null };
  }

  /**
   * The jobs of a status in the order they entered it, oldest first. Deleting jobs meanwhile is safe
   * (only `enter` changes the index).
   */
  *oldestFirst(status: JobStatus): Generator<StoredJob> {
    for (const entry of this.entries[status]) {
      const job = this.current(entry, status);
      if (job) yield job;
    }
  }

  private current(entry: IndexEntry, status: JobStatus): StoredJob | undefined {
    const job = this.jobs.get(entry.id);
    return job && job.status === status && job.statusSeq === entry.seq ? job : undefined;
  }

  /** The index of the first entry ordered after (at, seq). */
  private firstAfter(list: IndexEntry[], at: number, seq: number): number {
    let low = 0;
    let high = list.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      const entry = list[mid]!;
      if (entry.at < at || (entry.at === at && entry.seq <= seq)) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  private compact(status: JobStatus): void {
    this.entries[status] = this.entries[status].filter((entry) => this.current(entry, status) !== undefined);
  }
}

function decodeCursor(cursor: string): [number, number] {
  const match = CURSOR.exec(cursor);
  if (!match) {
    throw new Error(
      `listJobs: cursor '${cursor}' is not one this store issued; pass the nextCursor of the page before, or none for the first page.`,
    );
  }
  return [Number(match[1]), Number(match[2])];
}
