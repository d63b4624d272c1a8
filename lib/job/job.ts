import type { JobError } from './job-error.js';
import type { JobStatus } from './job-status.js';

/** JSON values: what payloads, results and progress may hold. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * The stored job. Times are milliseconds since the epoch. Payload, headers, owner and lease data are
 * internal: the job document (toJobDocument) never shows them.
 */
export interface Job {
  id: string;
  name: string;
  status: JobStatus;
  payload: JsonValue;
  headers: Record<string, string>;
  routeParams: Record<string, string>;
  queryParams: Record<string, string | string[]>;
  /** Who may read or cancel the job (`jobOwner`); null when ownership is off. */
  owner: string | null;
  /** Client idempotency key (`Idempotency-Key`), null when none was sent. */
  idempotencyKey: string | null;
  /** SHA-256 of the canonical payload JSON; a replay with another payload is a conflict. */
  fingerprint: string;
  /** W3C trace context of the submitting request (`traceparent`, `tracestate`). */
  traceContext: Record<string, string> | null;
  retryCount: number;
  maxRetries: number;
  /** How often the job was taken back from a dead or hung worker. */
  recoveryCount: number;
  progress: JsonValue | null;
  result: JsonValue | null;
  error: JobError | null;
  createdAt: number;
  startedAt: number | null;
  completedAt: number | null;
  lastUpdatedAt: number;
  /** When a Scheduled job becomes due again. */
  retryDelayUntil: number | null;
  cancelRequested: boolean;
  /** The worker holding the lease while InProgress. */
  workerId: string | null;
  leaseExpiresAt: number | null;
}

/** 1-based number of the attempt a claimed job is on. Releases at shutdown do not count. */
export function attemptOf(job: Pick<Job, 'retryCount' | 'recoveryCount'>): number {
  return job.retryCount + job.recoveryCount + 1;
}
