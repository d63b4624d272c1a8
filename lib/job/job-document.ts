import type { Job, JsonValue } from './job.js';
import type { JobError } from './job-error.js';
import { isTerminal, type JobStatus } from './job-status.js';

/** What clients see: `GET /jobs/:id`, the 202 answer, `AsyncEndpointsService.get`. */
export interface JobDocument {
  id: string;
  name: string;
  status: JobStatus;
  retryCount: number;
  maxRetries: number;
  progress: JsonValue | null;
  createdAt: string;
  startedAt: string | null;
  completedAt: string | null;
  lastUpdatedAt: string;
  retryDelayUntil: string | null;
  result: JsonValue | null;
  error: JobError | null;
  links?: { self: string; cancel?: string };
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/**
 * Maps a stored job to its public document. `selfPath` is the absolute path of the status resource
 * (with any global prefix); without it, no links are added. The cancel link is only there while the
 * job can still be canceled.
 */
export function toJobDocument(job: Job, selfPath?: string, exposeErrorDetails = false): JobDocument {
  const createdAt = new Date(job.createdAt).toISOString();
  const document: JobDocument = {
    id: job.id,
    name: job.name,
    status: job.status,
    retryCount: job.retryCount,
    maxRetries: job.maxRetries,
    progress: job.progress,
    createdAt,
    startedAt: iso(job.startedAt),
    completedAt: iso(job.completedAt),
    // A new job's (every 202): one date to format, not two.
    lastUpdatedAt: job.lastUpdatedAt === job.createdAt ? createdAt : new Date(job.lastUpdatedAt).toISOString(),
    retryDelayUntil: iso(job.retryDelayUntil),
    result: job.result,
    error: job.error && (exposeErrorDetails ? job.error : { code: job.error.code, message: job.error.message }),
  };
  if (selfPath !== undefined) {
    document.links = isTerminal(job.status) ? { self: selfPath } : { self: selfPath, cancel: selfPath };
  }
  return document;
}
