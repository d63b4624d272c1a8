/** One call under a deadline; `settle()` once it answered (it is then forgotten at once). */
export interface Deadline {
  settle(): void;
}

interface Entry extends Deadline {
  readonly expiresAt: number;
  readonly onExpiry: () => void;
}

/**
 * Deadlines of one fixed length for many calls, on one timer. Entries expire in the order they were
 * added (a Set keeps that order, and forgets a settled entry at once), so only the oldest one needs a
 * timer. A call costs a Set entry rather than a setTimeout and a clearTimeout, which on the hot paths
 * (a submit's store call, a handler's time budget) cost more than the rest of their bookkeeping.
 */
export class DeadlineQueue {
  private readonly entries = new Set<Entry>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly ms: number) {}

  /** Calls `onExpiry` once `ms` have passed, unless the returned deadline was settled before. */
  add(onExpiry: () => void): Deadline {
    const entries = this.entries;
    const entry: Entry = {
      expiresAt: performance.now() + this.ms,
      onExpiry,
      settle() {
        entries.delete(entry);
      },
    };
    entries.add(entry);
    // A timer armed for an older entry fires no later than this one's deadline, and re-arms.
    this.timer ??= this.arm(this.ms);
    return entry;
  }

  private arm(ms: number): NodeJS.Timeout {
    const timer = setTimeout(() => this.expire(), Math.max(1, Math.ceil(ms)));
    // What waits on a deadline keeps the process alive by itself; the timer need not.
    timer.unref();
    return timer;
  }

  private expire(): void {
    this.timer = null;
    const now = performance.now();
    for (const entry of this.entries) {
      if (entry.expiresAt > now) {
        this.timer = this.arm(entry.expiresAt - now);
        return;
      }
      this.entries.delete(entry);
      entry.onExpiry();
    }
  }
}
