import { Injectable } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import {
  AsyncEndpointsHealthIndicator,
  AsyncEndpointsService,
  AsyncHandler,
  type AsyncContext,
  type AsyncEndpointHandler,
  JobStore,
} from '../../lib/index.js';
import {
  AsyncEndpointsTestHarness,
  AsyncEndpointsTestingModule,
  createAsyncContext,
  DrainError,
} from '../../lib/testing/index.js';

/** Fails its first `failTimes` attempts. */
@AsyncHandler('FailsFirst')
@Injectable()
class FailsFirstHandler implements AsyncEndpointHandler<{ failTimes: number }> {
  handle({ request, job }: AsyncContext<{ failTimes: number }>) {
    if (job.attempt <= request.failTimes)
      throw Object.assign(new Error(`attempt ${job.attempt} fails`), { expose: true });
    return { attempt: job.attempt };
  }
}

/** Never settles, and ignores its signal. */
@AsyncHandler('Hangs')
@Injectable()
class HangingHandler implements AsyncEndpointHandler {
  handle(): Promise<never> {
    return new Promise(() => undefined);
  }
}

/** Submits another job like itself: a chain with no end. */
@AsyncHandler('Chain')
@Injectable()
class ChainHandler implements AsyncEndpointHandler<{ step: number }> {
  constructor(private readonly jobs: AsyncEndpointsService) {}

  async handle({ request }: AsyncContext<{ step: number }>) {
    await this.jobs.submit('Chain', { step: request.step + 1 });
  }
}

describe('AsyncEndpointsTestingModule and AsyncEndpointsTestHarness', () => {
  let moduleRef: TestingModule;
  let jobs: AsyncEndpointsService;
  let harness: AsyncEndpointsTestHarness;

  beforeEach(async () => {
    // No ScheduleModule: the testing module needs no timers.
    moduleRef = await Test.createTestingModule({
      imports: [AsyncEndpointsTestingModule.forRoot({ worker: { shutdownTimeoutMs: 10 } })],
      providers: [FailsFirstHandler, HangingHandler, ChainHandler],
    })
      .setLogger({ log: () => undefined, warn: () => undefined, error: () => undefined })
      .compile();
    await moduleRef.init();
    jobs = moduleRef.get(AsyncEndpointsService);
    harness = moduleRef.get(AsyncEndpointsTestHarness);
  });
  afterEach(() => moduleRef.close());

  it('leaves a submitted job Queued until drain(), which runs it to Completed', async () => {
    const { id } = await jobs.submit('FailsFirst', { failTimes: 0 });
    await Promise.resolve();
    expect((await jobs.get(id))?.status).toBe('Queued');
    await harness.drain();
    expect(await jobs.get(id)).toMatchObject({ status: 'Completed', result: { attempt: 1 }, retryCount: 0 });
  });

  it('drain() runs a failing job once and leaves it Scheduled for its retry when skipBackoff is off', async () => {
    const { id } = await jobs.submit('FailsFirst', { failTimes: 2 });
    await harness.drain();
    expect(await jobs.get(id)).toMatchObject({
      status: 'Scheduled',
      retryCount: 1,
      error: { message: 'attempt 1 fails' },
    });
  });

  it('drain({ skipBackoff: true }) runs one job through its retries to Completed and another to Failed after maxRetries', async () => {
    const flaky = await jobs.submit('FailsFirst', { failTimes: 2 });
    const failing = await jobs.submit('FailsFirst', { failTimes: 9 });
    await harness.drain();
    await harness.drain({ skipBackoff: true });
    expect(await jobs.get(flaky.id)).toMatchObject({ status: 'Completed', retryCount: 2, result: { attempt: 3 } });
    // maxRetries 3 (the default): four attempts, then Failed.
    expect(await jobs.get(failing.id)).toMatchObject({
      status: 'Failed',
      retryCount: 3,
      error: { message: 'attempt 4 fails' },
    });
  });

  it('list({ status, name, owner, limit, cursor }) pages newest first, filtered; list(status, limit) stays an array', async () => {
    const submitted: string[] = [];
    for (let i = 0; i < 5; i++) submitted.push((await jobs.submit('Chain', { step: 100 + i }, { owner: 'alice' })).id);
    await jobs.submit('Hangs', {}, { owner: 'alice' });
    await jobs.submit('Chain', { step: 200 }, { owner: 'bob' });
    const first = await jobs.list({ status: 'Queued', name: 'Chain', owner: 'alice', limit: 3 });
    const second = await jobs.list({
      status: 'Queued',
      name: 'Chain',
      owner: 'alice',
      limit: 3,
      cursor: first.nextCursor,
    });
    const rest =
      second.nextCursor === null
        ? []
        : (await jobs.list({ status: 'Queued', name: 'Chain', owner: 'alice', cursor: second.nextCursor })).jobs;
    expect([...first.jobs, ...second.jobs, ...rest].map((job) => job.id)).toEqual([...submitted].reverse());
    expect((await jobs.list('Queued', 2)).map((job) => job.name)).toEqual(['Chain', 'Hangs']);
  });

  it('drain() rejects with a DrainError naming a job whose handler never settles', async () => {
    const { id } = await jobs.submit('Hangs', {});
    const drained = harness.drain({ timeoutMs: 50 });
    await expect(drained).rejects.toThrow(DrainError);
    await expect(drained).rejects.toThrow(`${id} (Hangs, InProgress, attempt 1)`);
    await expect(drained).rejects.toThrow('drain() gave up after 50 ms (timeoutMs): a handler did not settle');
  });

  it('drain() stops and rejects naming the waiting job when jobs keep being queued beyond maxJobsQueued', async () => {
    await jobs.submit('Chain', { step: 1 });
    const error = (await harness.drain({ maxJobsQueued: 5 }).catch((caught: unknown) => caught)) as DrainError;
    expect(error).toBeInstanceOf(DrainError);
    expect(error.message).toContain('jobs were queued more than 5 times while it ran (maxJobsQueued)');
    expect(error.jobs).toEqual([expect.objectContaining({ name: 'Chain', status: 'Queued' })]);
    const completed = await jobs.list('Completed', 100);
    expect(completed.length).toBeGreaterThanOrEqual(5);
  });

  it('drain() rejects naming a due job the worker cannot claim: maxConcurrentJobs 1 taken by another worker', async () => {
    const capped = await Test.createTestingModule({
      imports: [AsyncEndpointsTestingModule.forRoot({ jobManager: { maxConcurrentJobs: 1 } })],
      providers: [FailsFirstHandler],
    }).compile();
    await capped.init();
    try {
      const service = capped.get(AsyncEndpointsService);
      const held = await service.submit('FailsFirst', { failTimes: 0 });
      // Another process's worker holds the only slot of the deployment.
      await capped.get(JobStore).claimDueJobs({
        workerId: 'other',
        names: ['FailsFirst'],
        limit: 1,
        leaseMs: 60_000,
        now: Date.now(),
        maxConcurrentJobs: 1,
      });
      const waiting = await service.submit('FailsFirst', { failTimes: 0 });
      const error = (await capped
        .get(AsyncEndpointsTestHarness)
        .drain()
        .catch((caught: unknown) => caught)) as DrainError;
      expect(error).toBeInstanceOf(DrainError);
      expect(error.message).toContain('drain() left due jobs that the worker does not claim');
      expect(error.message).toContain(`${waiting.id} (FailsFirst, Queued, attempt 1)`);
      expect(error.jobs.map((job) => [job.id, job.status])).toEqual([
        [held.id, 'InProgress'],
        [waiting.id, 'Queued'],
      ]);
    } finally {
      await capped.close();
    }
  });

  it('reports health up and the worker not stalled while it waits for a drain', async () => {
    const health = await moduleRef.get(AsyncEndpointsHealthIndicator).isHealthy();
    expect(health['async-endpoints']).toMatchObject({ status: 'up', worker: { enabled: true, stalled: false } });
  });

  it('drain() refuses a timeoutMs of 0 and a maxJobsQueued of 1.5 with a message naming the option and the rule', async () => {
    await expect(harness.drain({ timeoutMs: 0 })).rejects.toThrow(
      'drain(): timeoutMs must be a number of milliseconds above 0, got 0',
    );
    await expect(harness.drain({ maxJobsQueued: 1.5 })).rejects.toThrow(
      'drain(): maxJobsQueued must be an integer above 0, got 1.5',
    );
  });
});

describe('createAsyncContext', () => {
  it('reads headers case-insensitively and holds the given payload, params and job info', () => {
    const { ctx } = createAsyncContext({
      request: { data: 'x' },
      headers: { 'X-User-Id': 'u-1' },
      routeParams: { id: '7' },
      queryParams: { tag: ['a', 'b'] },
      job: { attempt: 2 },
    });
    expect(ctx.headers.get('x-user-id')).toBe('u-1');
    expect(ctx.headers.get('X-USER-ID')).toBe('u-1');
    expect(ctx.headers.has('authorization')).toBe(false);
    expect(ctx.request).toEqual({ data: 'x' });
    expect(ctx.routeParams).toEqual({ id: '7' });
    expect(ctx.queryParams).toEqual({ tag: ['a', 'b'] });
    expect(ctx.job).toMatchObject({ id: 'test-job', name: 'Test', attempt: 2, maxRetries: 3 });
  });

  it('records progress in order and the logger lines, and drops progress after abort() aborts the signal', async () => {
    const { ctx, progress, logs, abort } = createAsyncContext();
    await ctx.reportProgress(10);
    await ctx.reportProgress({ step: 'two' });
    ctx.logger.warn('slow');
    abort(new Error('canceled'));
    await ctx.reportProgress(100);
    expect(progress).toEqual([10, { step: 'two' }]);
    expect(logs).toEqual([{ level: 'warn', message: 'slow' }]);
    expect(ctx.signal.aborted).toBe(true);
  });
});
