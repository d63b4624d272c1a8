/** What health and telemetry read about this process's worker: read-only, always current. */
export interface WorkerStatus {
  /** `worker.enabled`: this process runs handlers. */
  readonly enabled: boolean;
  readonly workerId: string;
  /** The claim loop is meant to be going round (not before start, nor once stopped, nor between drains in tests). */
  readonly claiming: boolean;
  /** Handlers running now. */
  readonly active: number;
  /** Running handlers over `worker.maximumConcurrency`. */
  readonly utilization: number;
  /**
   * When the claim loop last went round with no claim pending, or a claim last answered (epoch ms);
   * null before the first round. Health reports a stall when it gets old.
   */
  readonly lastLoopAt: number | null;
}
