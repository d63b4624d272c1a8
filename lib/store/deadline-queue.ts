/** One call under a deadline; `settle()` once it answered. */
export interface Deadline {
  settle(): void;
}

interface Entry extends Deadline {
  readonly expiresAt: number;
  readonly onExpiry: () => void;
  settled: boolean;
}

/**
 * Deadlines of one fixed length for many calls, on one timer: entries expire in the order they were
 * added, so only the oldest pending one needs a timer. A call costs an entry, not a setTimeout and a
 * clearTimeout (which on the submit path cost more than the rest of the deadline handling).
 */
export class DeadlineQueue {
  private readonly entries: Entry[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly ms: number) {}

  /** Calls `onExpiry` once `ms` have passed, unless the returned deadline was settled before. */
  add(onExpiry: () => void): Deadline {
    const entry: Entry = {
      expiresAt: performance.now() + this.ms,
      onExpiry,
      settled: false,
      settle() {
        entry.settled = true;
      },
    };
    this.entries.push(entry);
    this.timer ??= this.arm(this.ms);
    return entry;
  }

  private arm(ms: number): NodeJS.Timeout {
    const timer = setTimeout(() => this.expire(), Math.max(0, Math.ceil(ms)));
    // A pending call keeps the process alive by itself; the timer need not.
    timer.unref();
    return timer;
  }

  private expire(): void {
    this.timer = null;
    const now = performance.now();
    while (this.head < this.entries.length) {
      const entry = this.entries[this.head]!;
      if (!entry.settled && entry.expiresAt > now) break;
      this.head++;
      if (!entry.settled) {
        entry.settled = true;
        entry.onExpiry();
      }
    }
    // Drop what was walked past once it is most of the array, so that it does not grow for ever.
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries.splice(0, this.head);
      this.head = 0;
    }
    const next = this.entries[this.head];
    if (next) this.timer = this.arm(next.expiresAt - now);
  }
}
