import { JobErrorCode, type Job, type JobError, type JsonValue } from '../job/index.js';
import {
  JobStore,
  type CancelResult,
  type ClaimedJob,
  type ClaimOptions,
  type CompleteOutcome,
  type CreateJobOptions,
  type CreateJobResult,
  type FailOptions,
  type FailOutcome,
  type JobPage,
  type JobStats,
  type Lease,
  type ListJobsOptions,
  type NewJob,
  type PurgeJobsOptions,
  type RecoverJobsOptions,
  type RecoveryReport,
  type ReleaseOutcome,
  type RenewResult,
  type Retention,
  type RetryJobResult,
  type StoreEventListener,
  type StoreEventType,
  type WorkerRegistration,
} from '../store/job-store.js';
import type { Telemetry } from './telemetry.js';

/**
 * The configured store with metrics around it: every operation's duration, and the job counters
 * from the transitions' outcomes, so that each transition is counted once, by the process that
 * made it.
 */
export class InstrumentedJobStore extends JobStore {
  /** Names of the jobs this process holds leases on, for the counters' `job.name`. */
  private readonly leasedNames = new Map<string, string>();

  constructor(
    readonly inner: JobStore,
    private readonly telemetry: Telemetry,
  ) {
    super();
  }

  get type(): string {
    return this.inner.type;
  }

  init(): Promise<void> {
    return this.inner.init();
  }

  async createJob(job: NewJob, options: CreateJobOptions): Promise<CreateJobResult> {
    const result = await this.time('createJob', () => this.inner.createJob(job, options));
    if (result.outcome === 'created') this.telemetry.jobsCreated.add(1, this.attrs(job.name));
    return result;
  }

  getJob(id: string): Promise<Job | null> {
    return this.time('getJob', () => this.inner.getJob(id));
  }

  async claimDueJobs(options: ClaimOptions): Promise<ClaimedJob[]> {
    const onUnreadable = options.onUnreadable;
    const counted: ClaimOptions = {
      ...options,
      onUnreadable: (report) => {
        // Its name may be what could not be read: counted without one.
        if (report.failed)
          this.telemetry.jobsFailed.add(1, this.attrs(undefined, { 'error.code': JobErrorCode.Unreadable }));
        onUnreadable?.(report);
      },
    };
    const claimed = await this.time('claimDueJobs', () => this.inner.claimDueJobs(counted));
    for (const { job } of claimed) {
      this.leasedNames.set(job.id, job.name);
      if (job.retryCount === 0 && job.recoveryCount === 0 && job.startedAt !== null) {
        this.telemetry.queueDuration.record((job.startedAt - job.createdAt) / 1000, this.attrs(job.name));
      }
    }
    return claimed;
  }

  async renewLeases(leases: Lease[], options: { now: number; leaseMs: number }): Promise<RenewResult> {
    const result = await this.time('renewLeases', () => this.inner.renewLeases(leases, options));
    for (const id of result.lost) this.leasedNames.delete(id);
    return result;
  }

  reportProgress(lease: Lease, progress: JsonValue, now: number): Promise<boolean> {
    return this.time('reportProgress', () => this.inner.reportProgress(lease, progress, now));
  }

  async completeJob(
    lease: Lease,
    result: JsonValue | null,
    options: { now: number; retention: Retention },
  ): Promise<CompleteOutcome> {
    const outcome = await this.time('completeJob', () => this.inner.completeJob(lease, result, options));
    const name = this.release(lease);
    if (outcome === 'completed') this.telemetry.jobsCompleted.add(1, this.attrs(name));
    return outcome;
  }

  async failJob(lease: Lease, error: JobError, options: FailOptions): Promise<FailOutcome> {
    const outcome = await this.time('failJob', () => this.inner.failJob(lease, error, options));
    const name = this.release(lease);
    const attributes = this.attrs(name, { 'error.code': error.code });
    if (outcome === 'scheduled') this.telemetry.jobsRetried.add(1, attributes);
    else if (outcome === 'failed') this.telemetry.jobsFailed.add(1, attributes);
    else if (outcome === 'canceled') this.telemetry.jobsCanceled.add(1, this.attrs(name));
    return outcome;
  }

  async releaseJob(lease: Lease, options: { now: number; retention: Retention }): Promise<ReleaseOutcome> {
    const outcome = await this.time('releaseJob', () => this.inner.releaseJob(lease, options));
    const name = this.release(lease);
    if (outcome === 'canceled') this.telemetry.jobsCanceled.add(1, this.attrs(name));
    return outcome;
  }

  async cancelJob(id: string, options: { now: number; retention: Retention }): Promise<CancelResult> {
    const result = await this.time('cancelJob', () => this.inner.cancelJob(id, options));
    if (result.outcome === 'canceled') this.telemetry.jobsCanceled.add(1, this.attrs(result.job.name));
    return result;
  }

  async recoverJobs(options: RecoverJobsOptions): Promise<RecoveryReport | null> {
    const report = await this.time('recoverJobs', () => this.inner.recoverJobs(options));
    if (report) {
      // The sweep may take jobs back from any process: only ids are known here, not names.
      if (report.requeued.length > 0) this.telemetry.jobsRecovered.add(report.requeued.length, this.attrs());
      if (report.exhausted.length > 0) {
        this.telemetry.jobsFailed.add(
          report.exhausted.length,
          this.attrs(undefined, { 'error.code': 'JOB_RECOVERY_EXHAUSTED' }),
        );
      }
      if (report.canceled.length > 0) this.telemetry.jobsCanceled.add(report.canceled.length, this.attrs());
    }
    return report;
  }

  stats(now: number): Promise<JobStats> {
    return this.time('stats', () => this.inner.stats(now));
  }

  registerWorker(registration: WorkerRegistration, options: { now: number; ttlMs: number }): Promise<void> {
    return this.time('registerWorker', () => this.inner.registerWorker(registration, options));
  }

  unregisterWorker(workerId: string): Promise<void> {
    return this.time('unregisterWorker', () => this.inner.unregisterWorker(workerId));
  }

  listJobs(options: ListJobsOptions): Promise<JobPage> {
    return this.time('listJobs', () => this.inner.listJobs(options));
  }

  retryJob(id: string, options: { now: number }): Promise<RetryJobResult> {
    return this.time('retryJob', () => this.inner.retryJob(id, options));
  }

  purgeJobs(options: PurgeJobsOptions): Promise<string[]> {
    return this.time('purgeJobs', () => this.inner.purgeJobs(options));
  }

  ping(): Promise<void> {
    return this.time('ping', () => this.inner.ping());
  }

  subscribe(listener: StoreEventListener, types?: readonly StoreEventType[]): () => void {
    return this.inner.subscribe(listener, types);
  }

  override diagnostics(): Record<string, unknown> {
    return this.inner.diagnostics();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private time<T>(operation: string, call: () => Promise<T>): Promise<T> {
    return this.telemetry.timeStore(operation, call);
  }

  /** The job's name, forgetting the lease: the transition ended it. */
  private release(lease: Lease): string | undefined {
    const name = this.leasedNames.get(lease.jobId);
    this.leasedNames.delete(lease.jobId);
    return name;
  }

  private attrs(name?: string, extra?: Record<string, string>) {
    // The common case (a counter per job): one object per handler name, not one per call.
    if (extra === undefined && name !== undefined) return this.telemetry.jobAttributes(name);
    return this.telemetry.attributes(name === undefined ? extra : { 'job.name': name, ...extra });
  }
}
