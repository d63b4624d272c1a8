import { jest } from '@jest/globals';
import { Injectable, Logger, type INestApplication } from '@nestjs/common';
import {
  AsyncEndpointsService,
  AsyncHandler,
  JobStore,
  MemoryJobStore,
  type AsyncEndpointHandler,
  type ClaimedJob,
  type ClaimOptions,
} from '../../lib/index.js';
import { newJob } from '../store-conformance/job-store.conformance.js';
import { waitFor } from '../support/sample-app.js';
import { startTestApp } from '../support/test-app.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The memory store, with its claims counted, and slowed or held back when a test asks for it. */
class ClaimRecordingStore extends MemoryJobStore {
  claims = 0;
  inFlight = 0;
  peakInFlight = 0;
  /** Each claim answers this much later (its jobs are taken at once, as on Redis). */
  answerDelayMs = 0;
  /** The next claim, once it has taken its jobs, waits for this before it answers. */
  holdNext: { taken: () => void; answer: Promise<void> } | null = null;

  override async claimDueJobs(options: ClaimOptions): Promise<ClaimedJob[]> {
    this.claims++;
    this.peakInFlight = Math.max(this.peakInFlight, ++this.inFlight);
    try {
      const claimed = await super.claimDueJobs(options);
      const hold = this.holdNext;
      this.holdNext = null;
      if (hold) {
        hold.taken();
        await hold.answer;
      }
      if (this.answerDelayMs > 0) await sleep(this.answerDelayMs);
      return claimed;
    } finally {
      this.inFlight--;
    }
  }
}

let runs = new Map<string, number>();

@AsyncHandler('Tick')
@Injectable()
class TickHandler implements AsyncEndpointHandler {
  handle({ job }: { job: { id: string } }) {
    runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
  }
}

describe('Worker claim loop', () => {
  let app: INestApplication | undefined;
  beforeEach(() => {
    runs = new Map();
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('keeps a second claim on its way while a backlog lasts, never more, and runs every job once', async () => {
    const store = new ClaimRecordingStore();
    store.answerDelayMs = 5;
    app = await startTestApp(
      { store, worker: { maximumConcurrency: 8, batchSize: 4, maximumQueueSize: 10_000 } },
      { providers: [TickHandler] },
    );
    const service = app.get(AsyncEndpointsService);
    const ids: string[] = [];
    for (let i = 0; i < 300; i++) ids.push((await service.submit('Tick', { i })).id);
    await waitFor(async () =>
      (await app!.get(JobStore).stats(Date.now())).counts.Completed === 300 ? true : undefined,
    );

    expect(store.peakInFlight).toBe(2);
    expect(runs.size).toBe(300);
    expect(ids.every((id) => runs.get(id) === 1)).toBe(true);
  });

  it('does not claim over and over while the queue is empty', async () => {
    const store = new ClaimRecordingStore();
    store.answerDelayMs = 2;
    app = await startTestApp({ store, worker: { pollingIntervalMs: 10_000 } }, { providers: [TickHandler] });
    await sleep(300);
    // The claim at start, and nothing since: no job, no poll yet.
    expect(store.claims).toBe(1);
    expect(store.peakInFlight).toBe(1);
  });

  it('claims once per job that arrives, not once more for every slot a finished job frees', async () => {
    const store = new ClaimRecordingStore();
    app = await startTestApp({ store, worker: { pollingIntervalMs: 10_000 } }, { providers: [TickHandler] });
    const service = app.get(AsyncEndpointsService);
    await sleep(50);
    const before = store.claims;
    for (let i = 0; i < 5; i++) {
      const { id } = await service.submit('Tick', { i });
      await waitFor(async () => (runs.get(id) === 1 ? true : undefined), 2000, 2);
      await sleep(20);
    }
    // One claim per job-available; a slot freed with nothing known to wait claims nothing.
    expect(store.claims - before).toBe(5);
  });

  it("claims only its handlers' names, and does not claim on job-available for a name it has no handler for", async () => {
    const store = new ClaimRecordingStore();
    app = await startTestApp({ store, worker: { pollingIntervalMs: 10_000 } }, { providers: [TickHandler] });
    const claimed: string[][] = [];
    const claim = store.claimDueJobs.bind(store);
    store.claimDueJobs = (options) => {
      claimed.push([...options.names]);
      return claim(options);
    };
    await sleep(50);
    const before = store.claims;
    // Another process submits jobs this worker has no handler for.
    const others: string[] = [];
    for (let i = 0; i < 10; i++) {
      const other = newJob({ name: 'Other' });
      others.push(other.id);
      await store.createJob(other, { now: Date.now(), maximumQueueSize: 1000 });
    }
    const { id } = await app.get(AsyncEndpointsService).submit('Tick');
    await waitFor(async () => (runs.get(id) === 1 ? true : undefined), 2000, 2);
    expect(store.claims - before).toBe(1);
    expect(claimed).toEqual([['Tick']]);
    for (const other of others) expect((await store.getJob(other))!.status).toBe('Queued');
  });

  it('hands a job of a name it has no handler for back to the queue (not Failed) when a store ignores the names', async () => {
    /** A custom store that breaks the contract: it claims every name. */
    class NameBlindStore extends ClaimRecordingStore {
      override claimDueJobs(options: ClaimOptions): Promise<ClaimedJob[]> {
        return super.claimDueJobs({ ...options, names: ['Tick', 'Other'] });
      }
    }
    const store = new NameBlindStore();
    const other = newJob({ name: 'Other' });
    await store.createJob(other, { now: Date.now(), maximumQueueSize: 1000 });
    const errors: string[] = [];
    const spy = jest.spyOn(Logger.prototype, 'error').mockImplementation((message: unknown) => {
      errors.push(String(message));
    });
    try {
      app = await startTestApp({ store, worker: { pollingIntervalMs: 10_000 } }, { providers: [TickHandler] });
      await waitFor(async () => (errors.length > 0 ? true : undefined), 2000, 5);
      await waitFor(async () => ((await store.getJob(other.id))!.status === 'Queued' ? true : undefined), 2000, 5);
    } finally {
      spy.mockRestore();
    }
    expect(await store.getJob(other.id)).toMatchObject({ status: 'Queued', retryCount: 0, error: null });
    expect(errors[0]).toContain(
      "a job of 'Other', a name it has no @AsyncHandler for and did not claim: the store ignores ClaimOptions.names",
    );
  });

  it('skips the fallback poll while jobs keep it claiming anyway', async () => {
    const store = new ClaimRecordingStore();
    app = await startTestApp({ store, worker: { pollingIntervalMs: 200 } }, { providers: [TickHandler] });
    const service = app.get(AsyncEndpointsService);
    await sleep(50);
    const before = store.claims;
    for (let i = 0; i < 20; i++) {
      await service.submit('Tick', { i });
      await sleep(50);
    }
    await waitFor(async () => (runs.size === 20 ? true : undefined), 2000, 5);
    // 20 jobs over ~1 s with a 200 ms poll: a claim per job, and (a slow moment aside) no poll claims.
    expect(store.claims - before).toBeGreaterThanOrEqual(20);
    expect(store.claims - before).toBeLessThanOrEqual(22);
    // Idle again, it polls.
    const idle = store.claims;
    await sleep(500);
    expect(store.claims - idle).toBeGreaterThanOrEqual(1);
  });

  it('claims again right after an empty claim when a job arrived while it was on its way', async () => {
    const store = new ClaimRecordingStore();
    let answer: () => void = () => undefined;
    const taken = new Promise<void>((resolve) => {
      store.holdNext = { taken: resolve, answer: new Promise((release) => (answer = release)) };
    });
    // The first claim goes out as the worker starts, finds nothing, and is held before it answers.
    app = await startTestApp({ store, worker: { pollingIntervalMs: 10_000 } }, { providers: [TickHandler] });
    await taken;
    const job = await app.get(AsyncEndpointsService).submit('Tick');
    await sleep(20);
    const answeredAt = Date.now();
    answer();

    // Its wake-up came while that claim was on its way: it is not lost until the next poll (10 s).
    await waitFor(async () => (runs.get(job.id) === 1 ? true : undefined), 2000, 5);
    expect(Date.now() - answeredAt).toBeLessThan(1000);
  });
});
