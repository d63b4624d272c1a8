import { Injectable } from '@nestjs/common';
import { JobWorker } from '../worker/job-worker.js';
import type { WorkerTimers } from '../timers/worker-timers.js';

/**
 * The worker's time in a test: no timer ever fires (no poll, no lease renewal, no retry wake-up, no
 * recovery sweep), and the clock moves ahead of the wall clock only when the harness skips a retry
 * delay. Needs no ScheduleModule.
 */
@Injectable()
export class ManualWorkerTimers implements Pick<WorkerTimers, keyof WorkerTimers> {
  private skippedMs = 0;

  now(): number {
    return Date.now() + this.skippedMs;
  }

  /** Moves the clock forward to `time`; never back. */
  advanceTo(time: number): void {
    this.skippedMs += Math.max(0, time - this.now());
  }

  every(): void {}

  once(): void {}

  cancel(): void {}
}

/** The library's worker, started only while the harness drains (a test decides when jobs run). */
@Injectable()
export class ManualJobWorker extends JobWorker {
  override onApplicationBootstrap(): void {}
}
