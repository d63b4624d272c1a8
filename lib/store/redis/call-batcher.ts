/** What one item of a batch came to: its value, or the error of that item alone. */
export type BatchOutcome<R> = { ok: true; value: R } | { ok: false; error: Error };

/**
 * The batchers of one kind of call, one per partition, that count their requests on the way together:
 * a call goes out alone at once only while none of them has one on its way. Otherwise, with many
 * partitions, the first call of a burst to each partition would go alone, and a burst spread over 12
 * partitions would cost 12 lone requests before any batching (measured on a 3-master Cluster: 1.6 times
 * the completion requests of one partition).
 */
export class BatchGroup {
  /** Requests of the group's batchers on their way. */
  inFlight = 0;
}

/**
 * Coalesces the calls of one moment into one request. A call made while no request of this batcher's
 * group is on its way goes out at once, alone: a lone call waits for nothing. Calls made while one is
 * on its way (a burst of submits, the completions of a claimed batch) go out together when the event
 * loop ends its current round of I/O (`setImmediate`), or as soon as `maxBatch` are waiting, or when
 * another call rides on them (ride()). Each caller
 * gets its own item's outcome; a failure of the whole request (Redis unreachable) rejects every item of it.
 */
export class CallBatcher<T, R> {
  private pending: { item: T; resolve: (value: R) => void; reject: (error: Error) => void }[] = [];
  private scheduled: NodeJS.Immediate | null = null;
  private readonly inFlight = new Set<Promise<void>>();

  /** `group`: shared with the batchers of the same calls to other partitions (default: its own). */
  constructor(
    private readonly send: (items: T[]) => Promise<BatchOutcome<R>[]>,
    private readonly maxBatch: number,
    private readonly group = new BatchGroup(),
  ) {}

  push(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.pending.length >= this.maxBatch || this.group.inFlight === 0) this.flush();
      else this.scheduled ??= setImmediate(() => this.flush());
    });
  }

  /** Sends what is waiting now and resolves once every request sent so far has answered. */
  async drain(): Promise<void> {
    this.flush();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /**
   * Sends the items waiting now at once, in one request with another call that rides
   * on them: `send` gets the items and answers their outcomes and the rider's value. Null when no item
   * is waiting (the rider then goes alone). The request counts as this batcher's: drain() waits for it.
   */
  ride<V>(send: (items: T[]) => Promise<{ outcomes: BatchOutcome<R>[]; value: V }>): Promise<V> | null {
    if (this.pending.length === 0) return null;
    if (this.scheduled) {
      clearImmediate(this.scheduled);
      this.scheduled = null;
    }
    // Fewer than maxBatch wait (push sends a full batch at once): they all go.
    return this.dispatch(this.pending.splice(0), send);
  }

  private flush(): void {
    if (this.scheduled) {
      clearImmediate(this.scheduled);
      this.scheduled = null;
    }
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.maxBatch);
      void this.dispatch(batch, async (items) => ({ outcomes: await this.send(items), value: undefined })).catch(
        () => undefined,
      );
    }
  }

  /**
   * Sends one request for `batch` and settles each item with its own outcome; resolves to the request's
   * other value, or rejects (as every item does) when the whole request failed.
   */
  private dispatch<V>(
    batch: CallBatcher<T, R>['pending'],
    send: (items: T[]) => Promise<{ outcomes: BatchOutcome<R>[]; value: V }>,
  ): Promise<V> {
    const reply = send(batch.map((entry) => entry.item));
    const request = reply.then(
      ({ outcomes }) => settle(batch, outcomes),
      (error: unknown) => {
        for (const entry of batch) entry.reject(error as Error);
      },
    );
    this.inFlight.add(request);
    this.group.inFlight++;
    void request.finally(() => {
      this.inFlight.delete(request);
      this.group.inFlight--;
    });
    return reply.then(({ value }) => value);
  }
}

function settle<R>(
  batch: { resolve: (value: R) => void; reject: (error: Error) => void }[],
  outcomes: BatchOutcome<R>[],
): void {
  batch.forEach((entry, i) => {
    const outcome = outcomes[i];
    if (!outcome)
      entry.reject(new Error(`The batched call answered ${outcomes.length} outcomes for ${batch.length} items.`));
    else if (outcome.ok) entry.resolve(outcome.value);
    else entry.reject(outcome.error);
  });
}
