import { JOB_STATUSES, JobStatus, toJobDocument, type Job } from '../job/index.js';
import type { JobStore, RecoveryReport } from '../store/job-store.js';
import type { Command } from './arguments.js';
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
export function runCommand(command: Exclude<Command, { name: 'migrate' }>, context: CommandContext): Promise<void> {
  switch (command.name) {
    case 'stats':
      return stats(context);
    case 'list':
      return list(context, command.status, command.limit);
    case 'retry':
      return retry(context, command.id);
    case 'retry-all-failed':
      return retryAllFailed(context, command.limit);
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
  print(
    `Oldest waiting job: ${result.oldestWaitingAgeMs === null ? 'none due' : `due ${formatAge(result.oldestWaitingAgeMs)} ago`}`,
  );
}

async function list({ store, json, print }: CommandContext, status: JobStatus, limit: number): Promise<void> {
  const [{ jobs }, { counts }] = await Promise.all([store.listJobs({ status, limit }), store.stats(Date.now())]);
  if (json) return print(JSON.stringify(jobs.map(operatorDocument), null, 2));
  if (jobs.length === 0) return print(`No ${status} jobs.`);
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
  const total = Math.max(counts[status], jobs.length);
  print('');
  print(
    jobs.length < total
      ? `${jobs.length} of ${total} ${status} jobs (--limit ${limit}).`
      : `${jobs.length} ${status} job(s).`,
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

/** Jobs retried per listing. */
const RETRY_PAGE = 500;

/**
 * Retries Failed jobs page by page (most recently failed first). A job that fails again while this
 * runs is not retried a second time.
 */
async function retryAllFailed({ store, json, print }: CommandContext, limit: number): Promise<void> {
  const seen = new Set<string>();
  const requeued: string[] = [];
  const skipped: string[] = [];
  while (seen.size < limit) {
    const page = await store.listJobs({
      status: JobStatus.Failed,
      limit: Math.min(RETRY_PAGE, limit - seen.size) + seen.size,
    });
    const fresh = page.jobs.filter((job) => !seen.has(job.id)).slice(0, limit - seen.size);
    if (fresh.length === 0) break;
    for (const job of fresh) {
      seen.add(job.id);
      const result = await store.retryJob(job.id, { now: Date.now() });
      (result.outcome === 'requeued' ? requeued : skipped).push(job.id);
    }
  }
  if (json) return print(JSON.stringify({ requeued, skipped }, null, 2));
  if (seen.size === 0) return print('No Failed jobs.');
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
  const { status, limit, confirmation } = command;
  const now = Date.now();
  const finishedBefore = now - command.olderThanMs;
  const before = formatTime(finishedBefore);
  if (confirmation === 'yes') {
    const purged = await store.purgeJobs({ status, finishedBefore, limit, now });
    if (json)
      return print(JSON.stringify({ status, finishedBefore: before, purged: purged.length, ids: purged }, null, 2));
    return print(`Purged ${purged.length} ${status} job(s) finished before ${before}.`);
  }
  const ids = await store.purgeJobs({ status, finishedBefore, limit, now, dryRun: true });
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
