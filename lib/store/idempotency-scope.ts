import type { Job } from '../job/index.js';

/**
 * An idempotency key in its scope: the same key sent to another endpoint or by another owner names
 * another job. Both stores index jobs by it (the Redis store by its hash).
 */
export function idempotencyScopeKey(job: Pick<Job, 'name' | 'owner' | 'idempotencyKey'>): string {
  return JSON.stringify([job.name, job.owner, job.idempotencyKey]);
}
