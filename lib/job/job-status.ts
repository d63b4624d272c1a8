/** The six states of a job. Values are the strings clients see in the job document. */
export const JobStatus = {
  Queued: 'Queued',
  Scheduled: 'Scheduled',
  InProgress: 'InProgress',
  Completed: 'Completed',
  Failed: 'Failed',
  Canceled: 'Canceled',
} as const;

export type JobStatus = (typeof JobStatus)[keyof typeof JobStatus];

export const JOB_STATUSES: readonly JobStatus[] = Object.values(JobStatus);

const TERMINAL: ReadonlySet<JobStatus> = new Set([JobStatus.Completed, JobStatus.Failed, JobStatus.Canceled]);
const WAITING: ReadonlySet<JobStatus> = new Set([JobStatus.Queued, JobStatus.Scheduled]);

/** Completed, Failed or Canceled: the job's run is over; only an operator's retry (Failed, Canceled) starts a new one. */
export function isTerminal(status: JobStatus): boolean {
  return TERMINAL.has(status);
}

/** Queued or Scheduled: the job waits for a worker and counts against `worker.maximumQueueSize`. */
export function isWaiting(status: JobStatus): boolean {
  return WAITING.has(status);
}

/**
 * The lifecycle the library drives. An operator's retry (`JobStore.retryJob`, the CLI's `retry`) is
 * outside it: it starts a Failed or Canceled job over as a new submission, Queued.
 */
const TRANSITIONS: Readonly<Record<JobStatus, readonly JobStatus[]>> = {
  Queued: [JobStatus.InProgress, JobStatus.Canceled],
  Scheduled: [JobStatus.InProgress, JobStatus.Canceled],
  // InProgress -> Queued is a release (shutdown) or a recovery; it does not count as a failed attempt.
  InProgress: [JobStatus.Completed, JobStatus.Scheduled, JobStatus.Failed, JobStatus.Canceled, JobStatus.Queued],
  Completed: [],
  Failed: [],
  Canceled: [],
};

export function canTransition(from: JobStatus, to: JobStatus): boolean {
  return TRANSITIONS[from].includes(to);
}
