import type { Job, JobStore, Retention } from '../../lib/index.js';
import { newJob } from '../store-conformance/job-store.conformance.js';

const retention: Retention = { completedTtlMs: 3_600_000, failedTtlMs: 3_600_000 };
const big = { maximumQueueSize: 1_000_000 };

/** A job in the given status, made through the store itself (for apps whose worker does not run `name`). */
export async function seed(
  store: JobStore,
  name: string,
  status: 'Queued' | 'InProgress' | 'Completed' | 'Failed',
  extra = {},
  /** When it was submitted: the stores order the jobs of a status by the millisecond they entered it. */
  now = Date.now(),
): Promise<Job> {
  const input = newJob({ name, payload: { secret: `payload of ${name}` }, ...extra });
  const created = await store.createJob(input, { ...big, now });
  if (created.outcome !== 'created') throw new Error(created.outcome);
  if (status === 'Queued') return created.job;
  const [claimed] = await store.claimDueJobs({
    workerId: 'dashboard-test',
    names: [name],
    limit: 1,
    leaseMs: 30_000,
    now: Date.now(),
    maxConcurrentJobs: null,
  });
  if (claimed?.job.id !== input.id) throw new Error(`claimed ${claimed?.job.id}, not ${input.id}`);
  if (status === 'InProgress') return claimed.job;
  if (status === 'Completed') await store.completeJob(claimed.lease, { done: name }, { now: Date.now(), retention });
  else
    await store.failJob(
      claimed.lease,
      { code: 'BOOM', message: 'it broke' },
      { now: Date.now(), retryAt: null, retention },
    );
  return (await store.getJob(input.id))!;
}
