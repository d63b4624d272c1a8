import { Injectable, type INestApplication, Scope } from '@nestjs/common';
import {
  AsyncEndpointsService,
  AsyncHandler,
  JobStore,
  MemoryJobStore,
  NonRetryableError,
  type AsyncContext,
  type AsyncEndpointHandler,
  type JobDocument,
} from '../../lib/index.js';
import { startTestApp } from '../support/test-app.js';
import { waitFor } from '../support/sample-app.js';

const never = () => new Promise<never>(() => undefined);

async function untilStatus(service: AsyncEndpointsService, id: string, statuses: string[], timeoutMs = 10_000) {
  return waitFor<JobDocument>(
    async () => {
      const job = await service.get(id);
      return job && statuses.includes(job.status) ? job : undefined;
    },
    timeoutMs,
    5,
  );
}

describe('Worker on the memory store', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('runs 200 jobs exactly once each, never more than 4 at once', async () => {
    const runs = new Map<string, number>();
    let active = 0;
    let peak = 0;
    @AsyncHandler('Count')
    @Injectable()
    class CountHandler implements AsyncEndpointHandler {
      async handle({ job }: AsyncContext) {
        active++;
        peak = Math.max(peak, active);
        runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
        await new Promise((resolve) => setTimeout(resolve, 2 + Math.random() * 5));
        active--;
      }
    }
    app = await startTestApp({ worker: { maximumConcurrency: 4, batchSize: 3 } }, { providers: [CountHandler] });
    const service = app.get(AsyncEndpointsService);
    const ids = await Promise.all(
      Array.from({ length: 200 }, (_, i) => service.submit('Count', { i }).then((j) => j.id)),
    );
    await waitFor(async () =>
      (await app!.get(JobStore).stats(Date.now())).counts.Completed === 200 ? true : undefined,
    );
    expect(runs.size).toBe(200);
    expect([...runs.values()].every((count) => count === 1)).toBe(true);
    expect(ids.every((id) => runs.has(id))).toBe(true);
    expect(peak).toBe(4);
  });

  it('starts a job on an idle worker in well under the poll interval', async () => {
    let startedAt = 0;
    @AsyncHandler('Quick')
    @Injectable()
    class QuickHandler implements AsyncEndpointHandler {
      handle() {
        startedAt = Date.now();
      }
    }
    app = await startTestApp({ worker: { pollingIntervalMs: 5000 } }, { providers: [QuickHandler] });
    await new Promise((resolve) => setTimeout(resolve, 100)); // let the loop go idle
    const submittedAt = Date.now();
    await app.get(AsyncEndpointsService).submit('Quick');
    await waitFor(async () => (startedAt > 0 ? true : undefined), 2000, 1);
    console.log(`pickup on an idle worker with pollingIntervalMs 5000: ${startedAt - submittedAt} ms`);
    expect(startedAt - submittedAt).toBeLessThan(500);
  });

  it('fails a timed-out attempt with JOB_TIMEOUT and retries it', async () => {
    const attempts: { attempt: number; aborted: boolean }[] = [];
    @AsyncHandler('Slow', { timeoutMs: 100, maxRetries: 1, retryDelayBaseSeconds: 0.01 })
    @Injectable()
    class SlowHandler implements AsyncEndpointHandler {
      async handle({ job, signal }: AsyncContext) {
        const record = { attempt: job.attempt, aborted: false };
        attempts.push(record);
        if (job.attempt === 1) {
          await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
          record.aborted = true;
          await never();
        }
        return 'second time lucky';
      }
    }
    app = await startTestApp({}, { providers: [SlowHandler] });
    const service = app.get(AsyncEndpointsService);
    const { id } = await service.submit('Slow');
    const scheduled = await untilStatus(service, id, ['Scheduled', 'InProgress', 'Completed']);
    const done = await untilStatus(service, id, ['Completed', 'Failed']);
    expect(done).toMatchObject({ status: 'Completed', retryCount: 1, result: 'second time lucky', error: null });
    expect(attempts).toEqual([
      { attempt: 1, aborted: true },
      { attempt: 2, aborted: false },
    ]);
    expect(scheduled).toBeDefined();
  });

  it('records JOB_TIMEOUT as the error when the last attempt times out', async () => {
    @AsyncHandler('AlwaysSlow', { timeoutMs: 50, maxRetries: 0 })
    @Injectable()
    class AlwaysSlowHandler implements AsyncEndpointHandler {
      handle() {
        return never();
      }
    }
    app = await startTestApp({}, { providers: [AlwaysSlowHandler] });
    const service = app.get(AsyncEndpointsService);
    const { id } = await service.submit('AlwaysSlow');
    const done = await untilStatus(service, id, ['Failed']);
    expect(done.error).toMatchObject({ code: 'JOB_TIMEOUT', message: expect.stringContaining('50 ms') });
  });

  it('fails at once on NonRetryableError, and clears the error when a later attempt succeeds', async () => {
    @AsyncHandler('Strict', { maxRetries: 5 })
    @Injectable()
    class StrictHandler implements AsyncEndpointHandler<{ mode: string }> {
      handle({ request, job }: AsyncContext<{ mode: string }>) {
        if (request.mode === 'never') throw new NonRetryableError('bad input, never works', 'BAD_INPUT');
        if (job.attempt === 1) throw new TypeError('transient');
        return 'ok';
      }
    }
    app = await startTestApp({ jobManager: { retryDelayBaseSeconds: 0.01 } }, { providers: [StrictHandler] });
    const service = app.get(AsyncEndpointsService);
    const never = await service.submit('Strict', { mode: 'never' });
    const once = await service.submit('Strict', { mode: 'once' });
    expect(await untilStatus(service, never.id, ['Failed'])).toMatchObject({
      retryCount: 0,
      error: { code: 'BAD_INPUT', message: 'bad input, never works' },
    });
    expect(await untilStatus(service, once.id, ['Completed'])).toMatchObject({
      retryCount: 1,
      error: null,
      result: 'ok',
    });
  });

  it('names the error code from the class when the error has no code', async () => {
    class PaymentDeclinedError extends Error {}
    @AsyncHandler('Pay', { maxRetries: 0 })
    @Injectable()
    class PayHandler implements AsyncEndpointHandler {
      handle(): never {
        throw new PaymentDeclinedError('card declined');
      }
    }
    app = await startTestApp({ http: { exposeErrorDetails: true } }, { providers: [PayHandler] });
    const service = app.get(AsyncEndpointsService);
    const { id } = await service.submit('Pay');
    const done = await untilStatus(service, id, ['Failed']);
    expect(done.error).toMatchObject({
      code: 'PAYMENT_DECLINED_ERROR',
      message: 'card declined',
      type: 'PaymentDeclinedError',
      stack: expect.stringContaining('card declined'),
    });
  });

  it('hands the handler its context: typed request, case-insensitive headers, params, job info', async () => {
    let seen: AsyncContext<{ n: number }> | undefined;
    @AsyncHandler('Context')
    @Injectable()
    class ContextHandler implements AsyncEndpointHandler<{ n: number }> {
      handle(context: AsyncContext<{ n: number }>) {
        seen = context;
      }
    }
    app = await startTestApp({}, { providers: [ContextHandler] });
    const service = app.get(AsyncEndpointsService);
    const { id } = await service.submit(
      'Context',
      { n: 7 },
      {
        headers: { 'X-Tenant': 'acme' },
        routeParams: { orderId: '9' },
        queryParams: { dryRun: 'true' },
      },
    );
    await untilStatus(service, id, ['Completed']);
    expect(seen!.request).toEqual({ n: 7 });
    expect(seen!.headers.get('x-tenant')).toBe('acme');
    expect(seen!.headers.get('X-TENANT')).toBe('acme');
    expect(seen!.routeParams).toEqual({ orderId: '9' });
    expect(seen!.queryParams).toEqual({ dryRun: 'true' });
    expect(seen!.job).toMatchObject({ id, name: 'Context', attempt: 1, maxRetries: 3, createdAt: expect.any(Date) });
  });

  it('gives request-scoped handlers a fresh instance per job', async () => {
    const instances = new Set<object>();
    @AsyncHandler('Scoped')
    @Injectable({ scope: Scope.REQUEST })
    class ScopedHandler implements AsyncEndpointHandler {
      handle() {
        instances.add(this);
      }
    }
    app = await startTestApp({}, { providers: [ScopedHandler] });
    const service = app.get(AsyncEndpointsService);
    const jobs = await Promise.all([1, 2, 3].map(() => service.submit('Scoped')));
    for (const job of jobs) await untilStatus(service, job.id, ['Completed']);
    expect(instances.size).toBe(3);
  });

  it('cancels a Queued job at once; it never runs', async () => {
    let ran = false;
    @AsyncHandler('Blocker')
    @Injectable()
    class BlockerHandler implements AsyncEndpointHandler<{ block: boolean }> {
      async handle({ request, signal }: AsyncContext<{ block: boolean }>) {
        if (request.block) await new Promise((resolve) => signal.addEventListener('abort', resolve));
        else ran = true;
      }
    }
    app = await startTestApp({ worker: { maximumConcurrency: 1 } }, { providers: [BlockerHandler] });
    const service = app.get(AsyncEndpointsService);
    const blocker = await service.submit('Blocker', { block: true });
    await untilStatus(service, blocker.id, ['InProgress']);
    const queued = await service.submit('Blocker', { block: false });
    const result = await service.cancel(queued.id);
    expect(result.outcome).toBe('canceled');
    expect((await service.get(queued.id))!.status).toBe('Canceled');
    await service.cancel(blocker.id);
    await untilStatus(service, blocker.id, ['Canceled']);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(ran).toBe(false);
  });

  it('keeps the cluster-wide maxConcurrentJobs cap', async () => {
    let active = 0;
    let peak = 0;
    @AsyncHandler('Capped')
    @Injectable()
    class CappedHandler implements AsyncEndpointHandler {
      async handle() {
        peak = Math.max(peak, ++active);
        await new Promise((resolve) => setTimeout(resolve, 10));
        active--;
      }
    }
    app = await startTestApp(
      { worker: { maximumConcurrency: 8 }, jobManager: { maxConcurrentJobs: 2 } },
      { providers: [CappedHandler] },
    );
    const service = app.get(AsyncEndpointsService);
    for (let i = 0; i < 20; i++) await service.submit('Capped', { i });
    await waitFor(async () =>
      (await app!.get(JobStore).stats(Date.now())).counts.Completed === 20 ? true : undefined,
    );
    expect(peak).toBe(2);
  });

  it('drops finished jobs after the retention period', async () => {
    @AsyncHandler('Brief')
    @Injectable()
    class BriefHandler implements AsyncEndpointHandler {
      handle() {
        return 1;
      }
    }
    app = await startTestApp({ retention: { completedTtlSeconds: 0.2 } }, { providers: [BriefHandler] });
    const service = app.get(AsyncEndpointsService);
    const { id } = await service.submit('Brief');
    await untilStatus(service, id, ['Completed']);
    await waitFor(async () => ((await service.get(id)) === null ? true : undefined), 2000);
  });

  it('runs nothing in an API-only process (worker.enabled: false)', async () => {
    let ran = false;
    @AsyncHandler('Idle')
    @Injectable()
    class IdleHandler implements AsyncEndpointHandler {
      handle() {
        ran = true;
      }
    }
    app = await startTestApp({ worker: { enabled: false, pollingIntervalMs: 10 } }, { providers: [IdleHandler] });
    const service = app.get(AsyncEndpointsService);
    const { id } = await service.submit('Idle');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(ran).toBe(false);
    expect((await service.get(id))!.status).toBe('Queued');
  });
});

describe('Shutdown and recovery on the memory store', () => {
  it('app.close() with 4 long jobs waits shutdownTimeoutMs (200 ms), then releases them Queued, closing in under 1.2 s, attempts not counted', async () => {
    const store = new MemoryJobStore();
    let aborted = 0;
    @AsyncHandler('Long')
    @Injectable()
    class LongHandler implements AsyncEndpointHandler {
      async handle({ signal }: AsyncContext) {
        await new Promise((resolve) => setTimeout(resolve, 60_000).unref());
        signal.throwIfAborted();
      }
    }
    const app = await startTestApp(
      { store, worker: { maximumConcurrency: 4, shutdownTimeoutMs: 200 } },
      { providers: [LongHandler] },
    );
    const service = app.get(AsyncEndpointsService);
    const jobs = await Promise.all([1, 2, 3, 4].map(() => service.submit('Long')));
    await waitFor(async () => ((await store.stats(Date.now())).inProgress === 4 ? true : undefined));
    store.subscribe(() => aborted++);
    const started = Date.now();
    await app.close();
    const took = Date.now() - started;
    expect(took).toBeLessThan(1200);
    expect(took).toBeGreaterThanOrEqual(190);
    for (const job of jobs) {
      expect(await store.getJob(job.id)).toMatchObject({
        status: 'Queued',
        retryCount: 0,
        recoveryCount: 0,
        error: null,
      });
    }
    expect((await store.stats(Date.now())).counts.InProgress).toBe(0);
  });

  it('lets running handlers finish within the grace period', async () => {
    const store = new MemoryJobStore();
    @AsyncHandler('Finishing')
    @Injectable()
    class FinishingHandler implements AsyncEndpointHandler {
      async handle() {
        await new Promise((resolve) => setTimeout(resolve, 150));
        return 'finished';
      }
    }
    const app = await startTestApp({ store, worker: { shutdownTimeoutMs: 5000 } }, { providers: [FinishingHandler] });
    const service = app.get(AsyncEndpointsService);
    const { id } = await service.submit('Finishing');
    await waitFor(async () => ((await store.getJob(id))!.status === 'InProgress' ? true : undefined));
    await app.close();
    expect(await store.getJob(id)).toMatchObject({ status: 'Completed', result: 'finished' });
  });

  const recoveryOptions = (maximumRetries: number) => ({
    worker: { jobTimeoutMinutes: 60 },
    jobManager: { jobClaimTimeoutMs: 60_000 },
    recovery: { jobTimeoutMinutes: 0.005, recoveryCheckIntervalSeconds: 0.1, maximumRetries },
  });

  it('takes back a handler that never settles and ignores its signal; a later attempt completes', async () => {
    @AsyncHandler('Hangs')
    @Injectable()
    class HangsHandler implements AsyncEndpointHandler {
      handle({ job }: AsyncContext) {
        return job.attempt === 1 ? never() : `done on attempt ${job.attempt}`;
      }
    }
    const app = await startTestApp(recoveryOptions(2), { providers: [HangsHandler] });
    try {
      const service = app.get(AsyncEndpointsService);
      const { id } = await service.submit('Hangs');
      const done = await untilStatus(service, id, ['Completed', 'Failed'], 5000);
      expect(done).toMatchObject({ status: 'Completed', result: 'done on attempt 2', retryCount: 0 });
      expect((await app.get(JobStore).getJob(id))!.recoveryCount).toBe(1);
    } finally {
      await app.close();
    }
  });

  it('fails a job that hangs every time with JOB_RECOVERY_EXHAUSTED after recovery.maximumRetries', async () => {
    @AsyncHandler('AlwaysHangs')
    @Injectable()
    class AlwaysHangsHandler implements AsyncEndpointHandler {
      handle() {
        return never();
      }
    }
    const app = await startTestApp(recoveryOptions(2), { providers: [AlwaysHangsHandler] });
    try {
      const service = app.get(AsyncEndpointsService);
      const { id } = await service.submit('AlwaysHangs');
      const done = await untilStatus(service, id, ['Completed', 'Failed'], 8000);
      expect(done).toMatchObject({ status: 'Failed', error: { code: 'JOB_RECOVERY_EXHAUSTED' } });
      expect((await app.get(JobStore).getJob(id))!.recoveryCount).toBe(2);
    } finally {
      await app.close();
    }
  });
});
