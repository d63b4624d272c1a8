import type { Job, JobError, JsonValue } from '../job/index.js';

/** A row of the dashboard's job list: what a table shows, no payload. */
export interface DashboardJobRow {
  id: string;
  name: string;
  status: string;
  /** Attempts run so far (retries and take-backs by recovery included). */
  attempts: number;
  maxRetries: number;
  owner: string | null;
  errorCode: string | null;
  createdAt: string;
  lastUpdatedAt: string;
  completedAt: string | null;
}

/** The dashboard's job detail: the stored job as an operator needs it. */
export interface DashboardJobDetail extends DashboardJobRow {
  retryCount: number;
  recoveryCount: number;
  idempotencyKey: string | null;
  workerId: string | null;
  cancelRequested: boolean;
  progress: JsonValue | null;
  error: JobError | null;
  startedAt: string | null;
  retryDelayUntil: string | null;
  leaseExpiresAt: string | null;
  /** Left out with `dashboard.hidePayloads`, as are the result and the captured request data. */
  payload?: JsonValue;
  result?: JsonValue | null;
  headers?: Record<string, string>;
  routeParams?: Record<string, string>;
  queryParams?: Record<string, string | string[]>;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** The attempt under way or last run counts once it started; retries and take-backs count each. */
function attemptsOf(job: Job): number {
  const ran = job.status !== 'Queued' && job.status !== 'Scheduled' && job.startedAt !== null;
  return job.retryCount + job.recoveryCount + (ran ? 1 : 0);
}

export function toDashboardRow(job: Job): DashboardJobRow {
  return {
    id: job.id,
    name: job.name,
    status: job.status,
    attempts: attemptsOf(job),
    maxRetries: job.maxRetries,
    owner: job.owner,
    errorCode: job.error?.code ?? null,
    createdAt: iso(job.createdAt)!,
    lastUpdatedAt: iso(job.lastUpdatedAt)!,
    completedAt: iso(job.completedAt),
  };
}

/** `exposeErrorDetails` (`http.exposeErrorDetails`) keeps the error's type and stack, as on `GET /jobs/:id`. */
export function toDashboardDetail(
  job: Job,
  { hidePayloads, exposeErrorDetails }: { hidePayloads: boolean; exposeErrorDetails: boolean },
): DashboardJobDetail {
  const detail: DashboardJobDetail = {
    ...toDashboardRow(job),
    retryCount: job.retryCount,
    recoveryCount: job.recoveryCount,
    idempotencyKey: job.idempotencyKey,
    workerId: job.workerId,
    cancelRequested: job.cancelRequested,
    progress: job.progress,
    error: job.error && (exposeErrorDetails ? job.error : { code: job.error.code, message: job.error.message }),
    startedAt: iso(job.startedAt),
    retryDelayUntil: iso(job.retryDelayUntil),
    leaseExpiresAt: iso(job.leaseExpiresAt),
  };
  if (hidePayloads) return detail;
  return {
    ...detail,
    payload: job.payload,
    result: job.result,
    headers: job.headers,
    routeParams: job.routeParams,
    queryParams: job.queryParams,
  };
}
