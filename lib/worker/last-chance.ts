import type { Job } from '../job/index.js';
import type { ClaimedJob, Lease } from '../store/job-store.js';
import { JobLogger } from './job-logger.js';
import type { AttemptOutcome, RunningJob } from './running-job.js';

/**
 * Poison-job isolation. A job taken back `recovery.maximumRetries` times already may be what killed its
 * earlier workers: it runs alone, so that if it kills this process too, only it is failed with
 * JOB_RECOVERY_EXHAUSTED, not the jobs that happened to run beside it. While such a job is kept by a
 * claim, waits for the other handlers to finish, or runs, nothing is claimed.
 */
export class LastChance {
  /** The last-chance job of this worker, waiting to run alone or running. */
  private lone: { entry: RunningJob; waiting: boolean; admit: () => void } | null = null;
  /** A claim on its way kept a last-chance job: no other claim may keep one. */
  private kept = false;

  constructor(
    private readonly maximumRetries: number,
    private readonly running: ReadonlyMap<string, RunningJob>,
    private readonly isClaiming: () => boolean,
    private readonly release: (lease: Lease, job: Job) => Promise<void>,
  ) {}

  /** A last-chance job is kept, waits or runs: the claim loop claims nothing meanwhile. */
  get holdsClaims(): boolean {
    return this.lone !== null || this.kept;
  }

  /** Taken back as often as recovery allows: one more take-back fails it. */
  applies(job: Job): boolean {
    return job.recoveryCount > 0 && job.recoveryCount >= this.maximumRetries;
  }

  /**
   * Keeps the first last-chance job of a batch, last, so that it sees the others running and waits for
   * them; any other last-chance job (all of them, when another claim keeps one or a lone job is here
   * already) goes back to the queue before anything runs.
   */
  keepOneAtMost(claimed: ClaimedJob[]): ClaimedJob[] | Promise<ClaimedJob[]> {
    const lastChance = claimed.filter((claim) => this.applies(claim.job));
    // Nothing to wait for in the usual case: the jobs start in this very turn.
    if (lastChance.length === 0) return claimed;
    return this.keepOne(claimed, lastChance);
  }

  /** The claim's jobs have started: the lone job it kept (if any) is now `lone`, or was handed back. */
  started(toStart: ClaimedJob[]): void {
    if (toStart.some((claim) => this.applies(claim.job))) this.kept = false;
  }

  /** Resolves true once no other attempt is left in this worker, false if interrupted first. */
  waitToRunAlone(entry: RunningJob, outcome: Promise<AttemptOutcome>): Promise<boolean> {
    const admitted = new Promise<boolean>((resolve) => {
      this.lone = { entry, waiting: true, admit: () => resolve(true) };
    });
    const others = this.running.size - 1;
    if (others > 0) {
      new JobLogger(entry.job).warn(
        `Taken back ${entry.job.recoveryCount} time(s) already: it runs alone, after the ${others} job(s) running here`,
      );
    }
    this.admit();
    return Promise.race([admitted, outcome.then(() => false)]);
  }

  /** Lets the waiting lone job start once it is the only attempt left. */
  admit(): void {
    const lone = this.lone;
    if (!lone?.waiting || !this.isClaiming()) return;
    if (this.running.size !== 1 || this.running.get(lone.entry.job.id) !== lone.entry) return;
    lone.waiting = false;
    lone.admit();
  }

  /** Shutdown: a job waiting to run alone has not started, it goes back to the queue at once. */
  releaseWaiting(): void {
    if (this.lone?.waiting) this.lone.entry.interrupt({ kind: 'released' });
  }

  /** The attempt ended; true if it was the lone job (claims may go out again). */
  ended(entry: RunningJob): boolean {
    if (this.lone?.entry !== entry) return false;
    this.lone = null;
    return true;
  }

  private async keepOne(claimed: ClaimedJob[], lastChance: ClaimedJob[]): Promise<ClaimedJob[]> {
    // Decided before anything is awaited, so that a claim answered meanwhile keeps none (started()
    // clears the flag once the lone job has started, and `lone` takes over).
    const lone = this.holdsClaims ? undefined : lastChance[0];
    if (lone) this.kept = true;
    const handBack = lastChance.filter((claim) => claim !== lone);
    await Promise.all(handBack.map((claim) => this.release(claim.lease, claim.job)));
    const others = claimed.filter((claim) => !this.applies(claim.job));
    return lone ? [...others, lone] : others;
  }
}
