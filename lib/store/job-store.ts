import { fingerprintOf, type Job, type JobError, type JobStatus, type JsonValue } from '../job/index.js';
import type { NewJob } from '../job/job-records.js';

export type { NewJob } from '../job/job-records.js';

/**
 * Whether a submission that met an existing job (same idempotency key, or same id) is a replay of it:
 * same endpoint, owner and payload. A job stored without a fingerprint gets it computed here.
 */
export function isReplayOf(existing: Job, input: NewJob): boolean {
  if (existing.name !== input.name || existing.owner !== input.owner) return false;
  const inputFingerprint = input.fingerprint || fingerprintOf(input.name, input.payload);
  return (existing.fingerprint || fingerprintOf(existing.name, existing.payload)) === inputFingerprint;
}

/** How long terminal jobs stay readable (`retention.*`). */
export interface Retention {
  completedTtlMs: number;
  failedTtlMs: number;
  /** `retention.dropPayloadOnFinish`: completing a job drops its payload, headers and query parameters. */
  dropPayloadOnFinish?: boolean;
}

/** What `createJob` did: stored a new job, or why not. */
export type CreateJobResult =
  /** A new job, Queued. */
  | { outcome: 'created'; job: Job }
  /** Same idempotency key (or job id), same name, owner and payload: the existing job, nothing new stored. */
  | { outcome: 'replayed'; job: Job }
  /** Same key with another name, owner or payload. Nothing stored. */
  | { outcome: 'conflict'; job: Job }
  /** Queued + Scheduled >= maximumQueueSize. Nothing stored. */
  | { outcome: 'queue-full'; waiting: number }
  /** The store has no room even after evicting finished jobs (memory store caps). Nothing stored. */
  | { outcome: 'store-full'; reason: string };

/** `createJob`'s options: the time of the submit and the queue limit (`worker.maximumQueueSize`). */
export interface CreateJobOptions {
  now: number;
  maximumQueueSize: number;
}

/** Proof of a claim. Every worker transition carries it; a stale token changes nothing. */
export interface Lease {
  jobId: string;
  /**
   * The job's name (its endpoint and handler). A store may keep its indexes per name and needs it to
   * name them (the Redis store declares every key a script touches).
   */
  name: string;
  token: string;
}

/** A job `claimDueJobs` handed to a worker, now InProgress, with the lease that fences its transitions. */
export interface ClaimedJob {
  job: Job;
  lease: Lease;
}

/** `claimDueJobs`'s options. */
export interface ClaimOptions {
  workerId: string;
  /**
   * The names this worker has handlers for: only jobs of these names are claimed. A job whose name no
   * worker claims stays waiting (it is never failed for want of a handler); `stats` shows it.
   */
  names: readonly string[];
  /** Most jobs to claim in this call (free slots, capped by batchSize). */
  limit: number;
  leaseMs: number;
  now: number;
  /** Cluster-wide cap on InProgress jobs; null for none. */
  maxConcurrentJobs: number | null;
  /** How long a job the claim fails as unreadable stays readable (its `failedTtlMs`); default 7 days. */
  retention?: Retention;
  /** Told of each job the claim met but could not read (see UnreadableJobReport); none is handed out. */
  onUnreadable?: (report: UnreadableJobReport) => void;
}

/**
 * A stored job a claim could not read back (its record was changed outside the store: a field gone, a
 * value that does not parse, a key of another type). It is not handed to a handler.
 */
export interface UnreadableJobReport {
  jobId: string;
  /** What is wrong with it, and what became of it. */
  message: string;
  /** True when the job was failed with JOB_UNREADABLE (it shows as Failed); false when nothing could be kept. */
  failed: boolean;
}

/** What `renewLeases` found. */
export interface RenewResult {
  /** Leases that no longer hold (job recovered, canceled, expired): the worker must abandon them. */
  lost: string[];
  /** Jobs whose lease holds but whose cancellation was requested. */
  cancelRequested: string[];
}

/** What `completeJob` did; `lease-lost`: nothing, the lease no longer held. */
export type CompleteOutcome = 'completed' | 'lease-lost';
/** What `failJob` did: a retry Scheduled, Failed for good, Canceled (cancellation was requested), or nothing (`lease-lost`). */
export type FailOutcome = 'scheduled' | 'failed' | 'canceled' | 'lease-lost';
/** What `releaseJob` did: Queued again, Canceled (cancellation was requested), or nothing (`lease-lost`). */
export type ReleaseOutcome = 'released' | 'canceled' | 'lease-lost';

/** `failJob`'s options. */
export interface FailOptions {
  now: number;
  /** When the retry becomes due; null fails the job for good. */
  retryAt: number | null;
  retention: Retention;
}

/** What a cancel did (`JobStore.cancelJob`, `AsyncEndpointsService.cancel`). */
export type CancelResult =
  /** Was Queued or Scheduled: now Canceled. */
  | { outcome: 'canceled'; job: Job }
  /** InProgress: cancellation requested; the worker running it is told. */
  | { outcome: 'cancel-requested'; job: Job }
  | { outcome: 'already-terminal'; job: Job }
  | { outcome: 'not-found' };

/** `recoverJobs`'s options (from the `recovery` options). */
export interface RecoverJobsOptions {
  now: number;
  /** InProgress longer than this is taken back even with a live lease (`recovery.jobTimeoutMinutes`). */
  maxInProgressMs: number;
  /** Take-backs allowed per job before it fails with JOB_RECOVERY_EXHAUSTED (`recovery.maximumRetries`). */
  maxRecoveries: number;
  /** How long the sweep lock is held: one sweep per period across the deployment. */
  lockMs: number;
  retention: Retention;
}

/** What one recovery sweep did, by job id. */
export interface RecoveryReport {
  /** Back to Queued. */
  requeued: string[];
  /** Failed with JOB_RECOVERY_EXHAUSTED. */
  exhausted: string[];
  /** Cancellation was requested while the worker died: Canceled. */
  canceled: string[];
  /** Queue or lease entries that pointed to missing or unreadable jobs, removed. */
  removedEntries: number;
}

/**
 * One name's live jobs, and how many live workers (see `registerWorker`) can run them. (Finished jobs
 * are counted per status only: a store need not index them per name.)
 */
export interface NameStats {
  /** Queued + Scheduled jobs of this name. */
  waiting: number;
  inProgress: number;
  /** Age of this name's job that has been due the longest; null when none is due. */
  oldestWaitingAgeMs: number | null;
  /** Registered workers, not yet expired, whose names include this one. */
  workers: number;
}

/** Counts for health, metrics and the dashboard (`JobStore.stats`). */
export interface JobStats {
  counts: Record<JobStatus, number>;
  /** Queued + Scheduled. */
  waiting: number;
  inProgress: number;
  /** Age of the job that has been due the longest; null when none is due. */
  oldestWaitingAgeMs: number | null;
  /**
   * Per job name: every name that has a stored job or a live worker. A name with waiting jobs and
   * `workers: 0` has nobody to run it.
   */
  names: Record<string, NameStats>;
}

/** A worker process's announcement of the names it runs (`registerWorker`), renewed while it lives. */
export interface WorkerRegistration {
  workerId: string;
  names: readonly string[];
}

/**
 * Thrown by `listJobs` for a cursor that is not a `nextCursor` the store returned (changed, made up,
 * from another store). A caller's mistake: the dashboard answers it 400.
 */
export class InvalidCursorError extends Error {
  constructor(readonly cursor: string) {
    super(
      `listJobs: cursor '${cursor}' is not one this store returned; pass the nextCursor of the page before as it came, or none for the first page.`,
    );
    this.name = 'InvalidCursorError';
  }
}

/** `listJobs`'s options: one status, optionally one name and one owner, a page at a time. */
export interface ListJobsOptions {
  status: JobStatus;
  /** Only jobs of this name. */
  name?: string;
  /** Only jobs of this owner (`jobOwner`). */
  owner?: string;
  /** Most jobs in the page. */
  limit: number;
  /** Where the page starts: the `nextCursor` of the page before; absent or null for the first page. */
  cursor?: string | null;
}

/**
 * A page of `listJobs`, newest first: live jobs (Queued, Scheduled, InProgress) most recently
 * submitted first, finished ones most recently finished first.
 */
export interface JobPage {
  jobs: Job[];
  /**
   * Pass it as `cursor` for the next page; null when there is none. Opaque: a store may encode what it
   * needs in it. A page never repeats a job of an earlier page of the same listing, and a job that
   * stays in the status is never skipped.
   */
  nextCursor: string | null;
}

/** What an operator's retry (`retryJob`) did. */
export type RetryJobResult =
  /** Was Failed or Canceled: Queued again, due at once, with a fresh attempt budget. */
  | { outcome: 'requeued'; job: Job }
  /** Queued, Scheduled, InProgress or Completed: nothing changed. */
  | { outcome: 'not-retryable'; job: Job }
  | { outcome: 'not-found' };

/** The statuses `purgeJobs` deletes from. */
export type TerminalJobStatus = Extract<JobStatus, 'Completed' | 'Failed' | 'Canceled'>;

/** purgeJobs deletes finished jobs only; a caller's mistake must not reach live ones. */
export function assertPurgeableStatus(status: string): asserts status is TerminalJobStatus {
  if (status !== 'Completed' && status !== 'Failed' && status !== 'Canceled') {
    throw new Error(
      `purgeJobs deletes finished jobs only: status must be Completed, Failed or Canceled, not '${status}'.`,
    );
  }
}

/** `purgeJobs`'s options. */
export interface PurgeJobsOptions {
  status: TerminalJobStatus;
  /** Only jobs of this name. */
  name?: string;
  /** Jobs whose `completedAt` is before this (ms since the epoch) are deleted. */
  finishedBefore: number;
  /** Most jobs deleted in this call. */
  limit: number;
  now: number;
  /** Delete nothing: return the ids that would be deleted (the operator CLI's `purge --dry-run`). */
  dryRun?: boolean;
}

/** What a store tells the processes that share it (`subscribe`). */
export type StoreEvent =
  /**
   * A job was queued (submit, release, recovery) or scheduled for a retry: idle workers should claim.
   * `name` is the job's name (workers without a handler for it ignore the event); a store that cannot
   * tell leaves it out, and then every worker claims. `dueAt` is set when the job is not due yet (a
   * retry): workers set a timer for it.
   */
  | { type: 'job-available'; name?: string; dueAt?: number }
  /** Cancellation of an InProgress job was requested. */
  | { type: 'cancel-requested'; jobId: string }
  /** The job reached a terminal status. */
  | { type: 'job-finished'; jobId: string };

/** Called with each store event (`subscribe`). */
export type StoreEventListener = (event: StoreEvent) => void;

/** The `type` of a store event, to name the events a listener needs. */
export type StoreEventType = StoreEvent['type'];

/**
 * The storage contract. Every operation that changes a job is atomic; every worker transition is
 * fenced by the lease token. One conformance suite (test/store-conformance) runs against every
 * implementation. The abstract class is the injection token: `@Inject(JobStore)` or a constructor
 * parameter of type JobStore.
 */
export abstract class JobStore {
  /** `memory`, `redis`, or a custom store's name; a metric attribute. */
  abstract readonly type: string;

  /** Called once at module start: connect, load scripts, run startup checks. */
  abstract init(): Promise<void>;

  abstract createJob(job: NewJob, options: CreateJobOptions): Promise<CreateJobResult>;

  abstract getJob(id: string): Promise<Job | null>;

  /**
   * Claims up to `limit` due jobs of `names`, in due-time order, then submission order. A store split
   * into partitions keeps that order within each partition only: it takes the partitions in turn, so
   * none waits behind another's backlog (no sharded queue orders across shards, and concurrent workers
   * interleave anyway). Fewer than `limit` means that nothing more was due when it looked.
   */
  abstract claimDueJobs(options: ClaimOptions): Promise<ClaimedJob[]>;

  /** Extends all given leases in one call. */
  abstract renewLeases(leases: Lease[], options: { now: number; leaseMs: number }): Promise<RenewResult>;

  abstract reportProgress(lease: Lease, progress: JsonValue, now: number): Promise<boolean>;

  abstract completeJob(
    lease: Lease,
    result: JsonValue | null,
    options: { now: number; retention: Retention },
  ): Promise<CompleteOutcome>;

  /** A failed attempt: Scheduled for a retry at `retryAt`, or Failed when it is null. */
  abstract failJob(lease: Lease, error: JobError, options: FailOptions): Promise<FailOutcome>;

  /** Hands a claimed job back (shutdown): Queued, due at once, the attempt not counted. */
  abstract releaseJob(lease: Lease, options: { now: number; retention: Retention }): Promise<ReleaseOutcome>;

  abstract cancelJob(id: string, options: { now: number; retention: Retention }): Promise<CancelResult>;

  /** Takes back expired or overdue jobs; null when another process holds the sweep lock. */
  abstract recoverJobs(options: RecoverJobsOptions): Promise<RecoveryReport | null>;

  /** Counts per status, in total and per name, with the workers registered per name. */
  abstract stats(now: number): Promise<JobStats>;

  /**
   * Announces (and renews) a worker: the names it runs, until `now + ttlMs`. Workers renew well within
   * the ttl; an expired registration no longer counts in `stats`. Used for visibility only: claims are
   * routed by `ClaimOptions.names`, not by registrations.
   */
  abstract registerWorker(registration: WorkerRegistration, options: { now: number; ttlMs: number }): Promise<void>;

  /** Removes a worker's registration (at shutdown). Unknown ids are ignored. */
  abstract unregisterWorker(workerId: string): Promise<void>;

  /** A page of the jobs in one status (optionally of one name and one owner), newest first. */
  abstract listJobs(options: ListJobsOptions): Promise<JobPage>;

  /**
   * An operator's retry of a Failed or Canceled job: Queued again and due at once, as a new
   * submission (after the jobs already waiting with the same due time). `retryCount` and
   * `recoveryCount` start again at 0, so the job gets its whole attempt budget; its last error stays
   * until the next attempt ends; its result, progress and times of the last run are cleared. It no
   * longer expires by retention, and keeps its idempotency key. Does not count against the queue limit.
   */
  abstract retryJob(id: string, options: { now: number }): Promise<RetryJobResult>;

  /**
   * Deletes up to `limit` jobs in a terminal status finished before `finishedBefore`, with their
   * idempotency keys, ahead of their retention. Returns the deleted ids (with `dryRun`, the ids it
   * would delete, deleting nothing).
   */
  abstract purgeJobs(options: PurgeJobsOptions): Promise<string[]>;

  /** Rejects when the store is unreachable. */
  abstract ping(): Promise<void>;

  /**
   * Store events, from this process and (for shared stores) from every other one. `types` names the
   * events the listener needs (all when omitted), so that a store can spare a process the traffic of
   * the others: a worker need not hear of every job finished anywhere. A store may still deliver
   * other types; listeners check `event.type`.
   */
  abstract subscribe(listener: StoreEventListener, types?: readonly StoreEventType[]): () => void;

  /** Store-specific facts for the health indicator (for Redis: the eviction-policy verdict). */
  diagnostics(): Record<string, unknown> {
    return {};
  }

  abstract close(): Promise<void>;
}
