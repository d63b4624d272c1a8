import { DeadlineQueue } from '../../lib/timers/deadline-queue.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('DeadlineQueue', () => {
  it('expires each unsettled call once, no sooner than its deadline, in the order they were added', async () => {
    const queue = new DeadlineQueue(60);
    const expired: { name: string; afterMs: number }[] = [];
    const started = performance.now();
    queue.add(() => expired.push({ name: 'first', afterMs: performance.now() - started }));
    await sleep(30);
    const added = performance.now();
    queue.add(() => expired.push({ name: 'second', afterMs: performance.now() - added }));
    // Far past both deadlines, so that a late timer on a loaded machine still fires before the check.
    await sleep(400);

    expect(expired.map((entry) => entry.name)).toEqual(['first', 'second']);
    for (const entry of expired) expect(entry.afterMs).toBeGreaterThanOrEqual(59);
  });

  it('never expires a settled call, also one behind a pending call', async () => {
    const queue = new DeadlineQueue(40);
    const expired: string[] = [];
    const settled = Array.from({ length: 500 }, (_, i) => queue.add(() => expired.push(`settled ${i}`)));
    queue.add(() => expired.push('pending'));
    const behind = queue.add(() => expired.push('settled behind'));
    for (const deadline of settled) deadline.settle();
    behind.settle();
    await sleep(120);

    expect(expired).toEqual(['pending']);
  });

  it('keeps working after the queue ran empty', async () => {
    const queue = new DeadlineQueue(20);
    const expired: string[] = [];
    queue.add(() => expired.push('one')).settle();
    await sleep(60);
    queue.add(() => expired.push('two'));
    await sleep(60);

    expect(expired).toEqual(['two']);
  });
});
