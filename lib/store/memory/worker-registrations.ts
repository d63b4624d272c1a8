import type { NameStats, WorkerRegistration } from '../job-store.js';

/** The memory store's worker registrations (registerWorker), each until it expires. */
export class WorkerRegistrations {
  private readonly workers = new Map<string, { names: readonly string[]; expiresAt: number }>();

  register(registration: WorkerRegistration, options: { now: number; ttlMs: number }): void {
    this.workers.set(registration.workerId, {
      names: [...registration.names],
      expiresAt: options.now + options.ttlMs,
    });
  }

  unregister(workerId: string): void {
    this.workers.delete(workerId);
  }

  /** Counts the live registrations into `names` (adding the names no job has), dropping expired ones. */
  countInto(names: Record<string, NameStats>, now: number): void {
    for (const [workerId, worker] of this.workers) {
      if (worker.expiresAt <= now) {
        this.workers.delete(workerId);
        continue;
      }
      for (const name of new Set(worker.names)) {
        const stats = (names[name] ??= { waiting: 0, inProgress: 0, oldestWaitingAgeMs: null, workers: 0 });
        stats.workers++;
      }
    }
  }
}
