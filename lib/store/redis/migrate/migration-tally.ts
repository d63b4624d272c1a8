import { JOB_STATUSES, type JobStatus } from '../../../job/index.js';

/** Jobs read and written per round trip. */
export const MIGRATION_BATCH = 200;

/** What a migration did, as it goes. */
export interface MigrationTally {
  /** Jobs now in layout 2, per status. */
  counts: Record<JobStatus, number>;
  /** Idempotency keys moved to the partitions (none move in place). */
  idempotencyKeys: number;
  /** Index entries whose job hash had expired or was gone: dropped. */
  missing: string[];
  /**
   * Jobs it could not convert whole (changed outside the store): a key that is not a hash or holds no
   * job status, left where it is; a live job without a name or a seq, converted but in no queue.
   */
  unreadable: string[];
}

export function emptyTally(): MigrationTally {
  return {
    counts: Object.fromEntries(JOB_STATUSES.map((status) => [status, 0])) as Record<JobStatus, number>,
    idempotencyKeys: 0,
    missing: [],
    unreadable: [],
  };
}
