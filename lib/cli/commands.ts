import { JOB_STATUSES, JobStatus, toJobDocument, type Job } from '../job/index.js';
import type { JobStore, RecoveryReport } from '../store/job-store.js';
import type { Command, StoreCommand } from './arguments.js';
import { escapeControlCharacters as shown } from '../observability/log-text.js';
import { formatAge, formatTable, formatTime, truncate } from './format.js';

export interface CommandContext {
  store: JobStore;
  json: boolean;
  /** A line (or block) on stdout. */
  print(text: string): void;
  /** A line on stderr. */
  warn(text: string): void;
}

/** A command that ran but could not do what was asked (job not found, not retryable): exit code 1. */
export class CommandFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandFailure';
  }
}

/** Runs one parsed command on the store (migrate has its own: migrate-command.ts). Throws CommandFailure (exit 1) when it cannot be done. */
export function runCommand(command: StoreCommand, context: CommandContext): Promise<void> {
  switch (command.name) {
    case 'stats':
      return stats(context);
    case 'list':
      return list(context, command);
    case 'retry':
      return retry(context, command.id);
    case 'retry-all-failed':
      return retryAllFailed(context, command);
    case 'cancel':
      return cancel(context, command.id, command.completedRetentionMs);
    case 'recover':
      return recover(context, command);
    case 'purge':
      return purge(context, command);
  }
}

async function stats({ store, json, print }: CommandContext): Promise<void> {
  const result = await store.stats(Date.now());
  if (json) return print(JSON.stringify(result, null, 2));
  print(
    formatTable(
      ['STATUS', 'JOBS'],
      JOB_STATUSES.map((status) => [status, String(result.counts[status])]),
    ),
  );
  print('');
  print(`Waiting (Queued + Scheduled): ${result.waiting}`);
  print(`Oldest waiting job: ${dueAge(result.oldestWaitingAgeMs)}`);
  const names = Object.entries(result.names).sort(([a], [b]) => a.localeCompare(b));
  if (names.length === 0) return;
  print('');
  print(
    formatTable(
      ['NAME', 'WAITING', 'IN PROGRESS', 'OLDEST WAITING', 'WORKERS'],
      names.map(([name, stats]) => [
        shown(name),
        String(stats.waiting),
        String(stats.inProgress),
        dueAge(stats.oldestWaitingAgeMs),
        stats.workers === 0 && stats.waiting > 0 ? '0 (no worker runs it)' : String(stats.workers),
      ]),
    ),
  );
  const unhandled = names.filter(([, stats]) => stats.workers === 0 && stats.waiting > 0).map(([name]) => name);
  if (unhandled.length > 0) {
    print('');
    print(
      `No live worker registers a handler for ${shown(unhandled.join(', '))}: their jobs wait until a worker process with that @AsyncHandler runs.`,
    );
  }
}

function dueAge(ageMs: number | null): string {
  return ageMs === null ? 'none due' : `due ${formatAge(ageMs)} ago`;
}

/** Jobs read per listing call; a listing filtered by name may answer short pages. */
const LIST_PAGE = 500;

/** Up to `limit` jobs of one status (and name), newest first, following the listing's cursor. */
async function newestJobs(store: JobStore, status: JobStatus, limit: number, name?: string): Promise<Job[]> {
  const jobs: Job[] = [];
  let cursor: string | null = null;
  do {
    const page = await store.listJobs({ status, name, limit: Math.min(LIST_PAGE, limit - jobs.length), cursor });
    jobs.push(...page.jobs);
    cursor = page.nextCursor;
  } while (cursor !== null && jobs.length < limit);
  return jobs;
}

async function list(
  { store, json, print }: CommandContext,
  { status, limit, jobName }: Extract<Command, { name: 'list' }>,
): Promise<void> {
  const [jobs, { counts }] = await Promise.all([newestJobs(store, status, limit, jobName), store.stats(Date.now())]);
  if (json) return print(JSON.stringify(jobs.map(operatorDocument), null, 2));
  const what = jobName === undefined ? status : `${status} ${shown(jobName)}`;
  if (jobs.length === 0) return print(`No ${what} jobs.`);
  print(
    formatTable(
      ['ID', 'NAME', 'RETRIES', 'CREATED', 'LAST UPDATE', 'ERROR'],
      jobs.map((job) => [
        shown(job.id),
        shown(job.name),
        `${job.retryCount}/${job.maxRetries}`,
        formatTime(job.createdAt),
        formatTime(job.lastUpdatedAt),
        job.error ? shown(truncate(`${job.error.code}: ${job.error.message}`, 80)) : '-',
      ]),
    ),
  );
  // Stats count per status, not per status and name: a listing by name has no total to show.
  const total = jobName === undefined ? counts[status] : null;
  print('');
  print(
    total !== null && jobs.length < total
      ? `${jobs.length} of ${total} ${what} jobs (--limit ${limit}), newest first.`
      : `${jobs.length} ${what} job(s), newest first.`,
  );
}

async function retry({ store, json, print }: CommandContext, id: string): Promise<void> {
  const result = await store.retryJob(id, { now: Date.now() });
  if (result.outcome === 'not-found') throw notFound(id);
  if (result.outcome === 'not-retryable') {
    throw new CommandFailure(`Job ${shown(id)} is ${result.job.status}: only Failed or Canceled jobs can be retried.`);
  }
  if (json) return print(JSON.stringify(operatorDocument(result.job), null, 2));
  print(
    `Job ${shown(id)} (${shown(result.job.name)}) is Queued again, with up to ${result.job.maxRetries + 1} attempts.`,
  );
}

/**
 * Retries Failed jobs page by page, most recently failed first, following the listing's cursor: a job
 * that fails again while this runs re-enters the listing ahead of the cursor and is not retried twice.
 */
async function retryAllFailed(
  { store, json, print }: CommandContext,
  { limit, jobName }: Extract<Command, { name: 'retry-all-failed' }>,
): Promise<void> {
  const requeued: string[] = [];
  const skipped: string[] = [];
  let cursor: string | null = null;
  do {
    const handled = requeued.length + skipped.length;
    const page = await store.listJobs({
      status: JobStatus.Failed,
      name: jobName,
      limit: Math.min(LIST_PAGE, limit - handled),
      cursor,
    });
    for (const job of page.jobs) {
      const result = await store.retryJob(job.id, { now: Date.now() });
      (result.outcome === 'requeued' ? requeued : skipped).push(job.id);
    }
    cursor = page.nextCursor;
  } while (cursor !== null && requeued.length + skipped.length < limit);
  if (json) return print(JSON.stringify({ requeued, skipped }, null, 2));
  if (requeued.length + skipped.length === 0) return print('No Failed jobs.');
  print(`Requeued ${requeued.length} Failed job(s).`);
  if (skipped.length > 0)
    print(`${skipped.length} job(s) changed meanwhile and were left as they are: ${shown(skipped.join(', '))}`);
}

async function cancel({ store, json, print }: CommandContext, id: string, completedRetentionMs: number): Promise<void> {
  // cancelJob ends jobs Canceled only: the Failed retention does not apply.
  const retention = { completedTtlMs: completedRetentionMs, failedTtlMs: completedRetentionMs };
  const result = await store.cancelJob(id, { now: Date.now(), retention });
  switch (result.outcome) {
    case 'not-found':
      throw notFound(id);
    case 'already-terminal':
      throw new CommandFailure(`Job ${shown(id)} is already ${result.job.status}: there is nothing to cancel.`);
    case 'canceled':
      if (json) return print(JSON.stringify({ outcome: result.outcome, job: operatorDocument(result.job) }, null, 2));
      return print(`Job ${shown(id)} (${shown(result.job.name)}) canceled.`);
    case 'cancel-requested':
      if (json) return print(JSON.stringify({ outcome: result.outcome, job: operatorDocument(result.job) }, null, 2));
      return print(
        `Job ${shown(id)} (${shown(result.job.name)}) is running on worker ${shown(String(result.job.workerId))}: cancellation requested; ` +
          'its handler is aborted and the job ends Canceled.',
      );
  }
}

/** The CLI's sweep holds the recovery lock this long; a sweep takes milliseconds. */
const RECOVERY_LOCK_MS = 1000;
const LOCK_RETRY_MS = 250;

async function recover(
  { store, json, print, warn }: CommandContext,
  options: Extract<Command, { name: 'recover' }>,
): Promise<void> {
  const deadline = Date.now() + options.waitMs;
  let report: RecoveryReport | null = null;
  for (let attempt = 0; ; attempt++) {
    report = await store.recoverJobs({
      now: Date.now(),
      maxInProgressMs: options.maxInProgressMs,
      maxRecoveries: options.maxRecoveries,
      lockMs: RECOVERY_LOCK_MS,
      retention: { completedTtlMs: options.completedRetentionMs, failedTtlMs: options.failedRetentionMs },
    });
    if (report) break;
    if (Date.now() + LOCK_RETRY_MS > deadline) {
      throw new CommandFailure(
        `The recovery lock stayed held by another process for ${formatAge(options.waitMs)}: a running app sweeps every ` +
          'recovery.recoveryCheckIntervalSeconds and takes jobs back itself. Try again, or raise --wait.',
      );
    }
    if (attempt === 0) warn('A running app holds the recovery lock (its own sweep); waiting for it...');
    await new Promise((resolve) => setTimeout(resolve, LOCK_RETRY_MS));
  }
  if (json) return print(JSON.stringify(report, null, 2));
  print(
    `Recovery: ${report.requeued.length} job(s) requeued, ${report.exhausted.length} failed with JOB_RECOVERY_EXHAUSTED, ` +
      `${report.canceled.length} canceled, ${report.removedEntries} broken queue entr(ies) removed.`,
  );
  for (const [what, ids] of [
    ['Requeued', report.requeued],
    ['Failed', report.exhausted],
    ['Canceled', report.canceled],
  ] as const) {
    if (ids.length > 0) print(`${what}: ${shown(ids.join(', '))}`);
  }
}

/**
 * Deletes only with --yes. Without it (or with --dry-run) it lists what it would delete; without
 * either it then fails, so that a purge typed by mistake deletes nothing and says how to confirm.
 */
async function purge(
  { store, json, print }: CommandContext,
  command: Extract<Command, { name: 'purge' }>,
): Promise<void> {
  const { status, limit, confirmation, jobName: name } = command;
  const now = Date.now();
  const finishedBefore = now - command.olderThanMs;
  const before = formatTime(finishedBefore);
  if (confirmation === 'yes') {
    const purged = await store.purgeJobs({ status, name, finishedBefore, limit, now });
    if (json)
      return print(JSON.stringify({ status, finishedBefore: before, purged: purged.length, ids: purged }, null, 2));
    return print(`Purged ${purged.length} ${status} job(s) finished before ${before}.`);
  }
  const ids = await store.purgeJobs({ status, name, finishedBefore, limit, now, dryRun: true });
  if (json) {
    print(JSON.stringify({ status, finishedBefore: before, dryRun: true, wouldPurge: ids.length, ids }, null, 2));
  } else {
    print(`Would purge ${ids.length} ${status} job(s) finished before ${before}${ids.length > 0 ? ':' : '.'}`);
    if (ids.length > 0) print(ids.map((id) => shown(id)).join('\n'));
  }
  if (confirmation === 'none') {
    throw new CommandFailure(
      `Nothing was deleted: purge deletes only with --yes. Run the same command with --yes to delete ${
        ids.length === 1 ? 'this job' : `these ${ids.length} jobs`
      }, or with --dry-run to only list them.`,
    );
  }
}

/** The job document clients see, plus what an operator needs to tell workers and take-backs apart. */
function operatorDocument(job: Job) {
  return { ...toJobDocument(job), recoveryCount: job.recoveryCount, workerId: job.workerId };
}

function notFound(id: string): CommandFailure {
  return new CommandFailure(`Job ${shown(id)} not found (unknown id, or deleted after its retention).`);
}
