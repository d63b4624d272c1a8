import type { JobStore } from './job-store.js';

/** A registered wait for one job's `job-finished` event. */
export interface FinishWatch {
  /**
   * Resolves when the job finished, `timeoutMs` passed, the signal aborted or the waiters were
   * woken for shutdown: whichever comes first. Never rejects.
   */
  until(timeoutMs: number, signal?: AbortSignal): Promise<void>;
  /** Releases the registration and its timer; idempotent. Call it on every path. */
  stop(): void;
}

/**
 * Waits for jobs to finish on one store subscription shared by all waiters (a map by job id, so an
 * event costs one lookup however many requests wait). The subscription is taken with the first
 * waiter and dropped with the last.
 *
 * Register (`watch`) before reading the job: a finish between the read and the wait is then not
 * lost, whichever process makes it.
 */
export class JobFinishedWaiters {
  private readonly waiters = new Map<string, Set<() => void>>();
  private unsubscribe: (() => void) | null = null;
  private closed = false;

  constructor(private readonly store: JobStore) {}

  /** Waits registered now, for tests and diagnostics. */
  get size(): number {
    let size = 0;
    for (const set of this.waiters.values()) size += set.size;
    return size;
  }

  watch(jobId: string): FinishWatch {
    let finished = false;
    let wake: () => void = () => {
      finished = true;
    };
    const listener = () => wake();
    this.add(jobId, listener);
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      wake();
      this.remove(jobId, listener);
    };
    return {
      stop,
      until: (timeoutMs, signal) => {
        if (finished || stopped || this.closed || signal?.aborted || timeoutMs <= 0) return Promise.resolve();
        return new Promise<void>((resolve) => {
          const onAbort = () => done();
          const done = () => {
            clearTimeout(timer);
            signal?.removeEventListener('abort', onAbort);
            finished = true;
            resolve();
          };
          wake = done;
          timer = setTimeout(done, timeoutMs);
          signal?.addEventListener('abort', onAbort, { once: true });
        });
      },
    };
  }

  /** Shutdown: wakes every waiter at once, and later ones do not wait (long-polls answer what they have). */
  close(): void {
    this.closed = true;
    for (const set of [...this.waiters.values()]) for (const wake of [...set]) wake();
  }

  private add(jobId: string, listener: () => void): void {
    this.unsubscribe ??= this.store.subscribe(
      (event) => {
        if (event.type !== 'job-finished') return;
        const set = this.waiters.get(event.jobId);
        if (set) for (const wake of [...set]) wake();
      },
      ['job-finished'],
    );
    let set = this.waiters.get(jobId);
    if (!set) this.waiters.set(jobId, (set = new Set()));
    set.add(listener);
  }

  private remove(jobId: string, listener: () => void): void {
    const set = this.waiters.get(jobId);
    if (!set?.delete(listener)) return;
    if (set.size === 0) this.waiters.delete(jobId);
    if (this.waiters.size === 0) {
      this.unsubscribe?.();
      this.unsubscribe = null;
    }
  }
}
