import { BatchGroup, CallBatcher, type BatchOutcome } from '../../lib/store/redis/call-batcher.js';

/** A request that answers when told to, recording the batches it was sent. */
function controlledSend() {
  const batches: number[][] = [];
  const answers: ((outcomes: BatchOutcome<string>[] | Error) => void)[] = [];
  const send = (items: number[]) => {
    batches.push(items);
    return new Promise<BatchOutcome<string>[]>((resolve, reject) => {
      answers.push((outcomes) => (outcomes instanceof Error ? reject(outcomes) : resolve(outcomes)));
    });
  };
  const answerAll = (i: number) =>
    answers[i]!(batches[i]!.map((item) => ({ ok: true as const, value: `done ${item}` })));
  return { batches, answers, send, answerAll };
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('CallBatcher', () => {
  it('sends a lone call at once, alone', async () => {
    const { batches, send, answerAll } = controlledSend();
    const batcher = new CallBatcher(send, 10);
    const done = batcher.push(1);
    expect(batches).toEqual([[1]]);
    answerAll(0);
    await expect(done).resolves.toBe('done 1');
  });

  it('sends the calls made while one is on its way together, at the end of the turn', async () => {
    const { batches, send, answerAll } = controlledSend();
    const batcher = new CallBatcher(send, 10);
    const first = batcher.push(1);
    const rest = [2, 3, 4].map((item) => batcher.push(item));
    expect(batches).toEqual([[1]]);
    await nextTurn();
    expect(batches).toEqual([[1], [2, 3, 4]]);
    answerAll(1);
    answerAll(0);
    await expect(Promise.all([first, ...rest])).resolves.toEqual(['done 1', 'done 2', 'done 3', 'done 4']);
  });

  it('never sends more than maxBatch items in one request', async () => {
    const { batches, send } = controlledSend();
    const batcher = new CallBatcher(send, 3);
    void batcher.push(0);
    for (let item = 1; item <= 7; item++) void batcher.push(item);
    await nextTurn();
    expect(batches).toEqual([[0], [1, 2, 3], [4, 5, 6], [7]]);
  });

  it("gives each caller its own item's outcome", async () => {
    const { send, answers } = controlledSend();
    const batcher = new CallBatcher(send, 10);
    void batcher.push(0);
    const ok = batcher.push(1);
    const failed = batcher.push(2);
    await nextTurn();
    answers[1]!([
      { ok: true, value: 'fine' },
      { ok: false, error: new Error('WRONGTYPE on job 2') },
    ]);
    await expect(ok).resolves.toBe('fine');
    await expect(failed).rejects.toThrow('WRONGTYPE on job 2');
  });

  it('rejects every item of a request that failed as a whole, and only those', async () => {
    const { send, answers, answerAll } = controlledSend();
    const batcher = new CallBatcher(send, 10);
    const first = batcher.push(0);
    const second = [batcher.push(1), batcher.push(2)];
    await nextTurn();
    answers[1]!(new Error('Connection is closed.'));
    answerAll(0);
    await expect(first).resolves.toBe('done 0');
    for (const item of second) await expect(item).rejects.toThrow('Connection is closed.');
  });

  it('rejects items a request left without an outcome, naming the mismatch', async () => {
    const { send, answers } = controlledSend();
    const batcher = new CallBatcher(send, 10);
    const lone = batcher.push(0);
    answers[0]!([]);
    await expect(lone).rejects.toThrow('The batched call answered 0 outcomes for 1 items.');
  });

  it('drain() sends what waits and resolves once every request answered', async () => {
    const { batches, send, answerAll } = controlledSend();
    const batcher = new CallBatcher(send, 10);
    void batcher.push(0);
    void batcher.push(1);
    let drained = false;
    const draining = batcher.drain().then(() => {
      drained = true;
    });
    expect(batches).toEqual([[0], [1]]);
    answerAll(0);
    await nextTurn();
    expect(drained).toBe(false);
    answerAll(1);
    await draining;
    expect(drained).toBe(true);
  });

  it("holds a call for the turn's end while another batcher of its group has a request on its way", async () => {
    const group = new BatchGroup();
    const first = controlledSend();
    const second = controlledSend();
    const partitionA = new CallBatcher(first.send, 10, group);
    const partitionB = new CallBatcher(second.send, 10, group);
    const a = partitionA.push(1);
    const b = [partitionB.push(2), partitionB.push(3)];
    expect(second.batches).toEqual([]);
    await nextTurn();
    expect(second.batches).toEqual([[2, 3]]);
    first.answerAll(0);
    second.answerAll(0);
    await expect(Promise.all([a, ...b])).resolves.toEqual(['done 1', 'done 2', 'done 3']);
    // The group is quiet again: a lone call goes at once.
    const lone = partitionB.push(4);
    expect(second.batches).toEqual([[2, 3], [4]]);
    second.answerAll(1);
    await expect(lone).resolves.toBe('done 4');
  });

  it('sends a lone call at once when only batchers of other groups have requests on their way', () => {
    const busy = controlledSend();
    const idle = controlledSend();
    void new CallBatcher(busy.send, 10).push(1);
    void new CallBatcher(idle.send, 10).push(2);
    expect(idle.batches).toEqual([[2]]);
  });

  describe('ride (another call sent with the items waiting)', () => {
    /** A rider's send: records the items it carried, answers them and its own value when told to. */
    function riderSend() {
      const carried: number[][] = [];
      let answer: ((reply: Error | 'ok') => void) | undefined;
      const send = (items: number[]) => {
        carried.push(items);
        return new Promise<{ outcomes: BatchOutcome<string>[]; value: string }>((resolve, reject) => {
          answer = (reply) =>
            reply instanceof Error
              ? reject(reply)
              : resolve({ outcomes: items.map((item) => ({ ok: true, value: `rode ${item}` })), value: 'claimed' });
        });
      };
      return { carried, send, answer: (reply: Error | 'ok') => answer!(reply) };
    }

    it('is null when no item waits, so that the rider goes alone', () => {
      const { send } = controlledSend();
      const batcher = new CallBatcher(send, 10);
      expect(batcher.ride(riderSend().send)).toBeNull();
      void batcher.push(1);
      // The lone call went at once: nothing waits.
      expect(batcher.ride(riderSend().send)).toBeNull();
    });

    it("takes the waiting items at once, settles each with its outcome and answers the rider's value", async () => {
      const { batches, send, answerAll } = controlledSend();
      const batcher = new CallBatcher(send, 10);
      const first = batcher.push(1);
      const waiting = [batcher.push(2), batcher.push(3)];
      const rider = riderSend();
      const value = batcher.ride(rider.send);
      expect(rider.carried).toEqual([[2, 3]]);
      rider.answer('ok');
      await expect(value).resolves.toBe('claimed');
      await expect(Promise.all(waiting)).resolves.toEqual(['rode 2', 'rode 3']);
      // Nothing is left for the end of the turn.
      await nextTurn();
      expect(batches).toEqual([[1]]);
      answerAll(0);
      await expect(first).resolves.toBe('done 1');
    });

    it('rejects the carried items and the rider when the request fails as a whole', async () => {
      const { send } = controlledSend();
      const batcher = new CallBatcher(send, 10);
      void batcher.push(0);
      const waiting = batcher.push(1);
      const rider = riderSend();
      const value = batcher.ride(rider.send);
      rider.answer(new Error('Connection is closed.'));
      await expect(value).rejects.toThrow('Connection is closed.');
      await expect(waiting).rejects.toThrow('Connection is closed.');
    });

    it('counts as a request of the batcher and its group: drain() waits for it, and calls of the group wait for the turn', async () => {
      const group = new BatchGroup();
      const { batches, send, answerAll } = controlledSend();
      const other = controlledSend();
      const batcher = new CallBatcher(send, 10, group);
      const partitionB = new CallBatcher(other.send, 10, group);
      void batcher.push(0);
      void batcher.push(1);
      const rider = riderSend();
      void batcher.ride(rider.send);
      answerAll(0);
      await nextTurn();
      let drained = false;
      const draining = batcher.drain().then(() => (drained = true));
      void partitionB.push(2);
      expect(other.batches).toEqual([]);
      await nextTurn();
      expect(drained).toBe(false);
      rider.answer('ok');
      await draining;
      expect(batches).toEqual([[0]]);
    });
  });
});
