import { Injectable, type INestApplication } from '@nestjs/common';
import {
  AsyncEndpointsService,
  AsyncHandler,
  MemoryJobStore,
  type AsyncContext,
  type AsyncEndpointHandler,
  type AsyncEndpointsModuleOptions,
} from '../../lib/index.js';
import { seconds, sleep } from '../support/fault-deployment.js';
import { waitFor } from '../support/sample-app.js';
import { startTestApp } from '../support/test-app.js';

interface WorkRequest {
  ms: number;
  /** Never settles and ignores its signal, on its first run. */
  hang?: boolean;
}

/** Handler runs of one test, by job id: which app ran it and when. */
const runs: { job: string; app: string; attempt: number; at: number; endedAt?: number }[] = [];
let appName = '';
const hungOnce = new Set<string>();

@AsyncHandler('Work')
@Injectable()
class WorkHandler implements AsyncEndpointHandler<WorkRequest, { app: string; attempt: number }> {
  async handle({ request, job, signal }: AsyncContext<WorkRequest>) {
    const app = appName;
    const run: (typeof runs)[number] = { job: job.id, app, attempt: job.attempt, at: Date.now() };
    runs.push(run);
    if (request.hang && !hungOnce.has(job.id)) {
      hungOnce.add(job.id);
      return new Promise<never>(() => undefined);
    }
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, request.ms);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(signal.reason);
      });
    });
    run.endedAt = Date.now();
    return { app, attempt: job.attempt };
  }
}

/**
 * The memory store under faults, in one process: `app.close()` in the middle of a load leaves no job
 * InProgress (finished or released, and all of them complete in the next app on the same store), and a
 * handler that hangs for good is taken back by the recovery sweep.
 */
describe('The memory store under faults', () => {
  let app: INestApplication | undefined;

  const start = async (name: string, options: AsyncEndpointsModuleOptions) => {
    appName = name;
    app = await startTestApp(options, { providers: [WorkHandler] });
    return app.get(AsyncEndpointsService);
  };

  afterEach(async () => {
    await app?.close();
    app = undefined;
    runs.length = 0;
  });

  it('leaves no job InProgress when the app closes during load, and loses none', async () => {
    const store = new MemoryJobStore();
    const options: AsyncEndpointsModuleOptions = {
      store,
      worker: { maximumConcurrency: 8, shutdownTimeoutMs: 500, maximumQueueSize: 10_000 },
    };
    let service = await start('first', options);
    const ids: string[] = [];
    // Short jobs, some long ones that outlast the grace period, and one that hangs and ignores its signal.
    for (let i = 0; i < 400; i++) {
      const body: WorkRequest = i === 50 ? { ms: 0, hang: true } : { ms: i % 40 === 0 ? 2000 : 20 + (i % 31) };
      ids.push((await service.submit('Work', { ...body })).id);
    }
    // The hanging job must hang in this app (it settles only on its second run): wait until it has.
    await waitFor(async () => (hungOnce.has(ids[50]!) ? true : undefined), 10_000, 10);
    await sleep(300);
    const closeStarted = Date.now();
    await app!.close();
    const closeMs = Date.now() - closeStarted;
    app = undefined;
    const afterClose = await store.stats(Date.now());
    const ranInFirst = new Set(runs.map((run) => run.job)).size;

    // The next app on the same store runs what is left: nothing was lost.
    service = await start('second', options);
    const jobs = await waitFor(
      async () => {
        const all = await Promise.all(ids.map((id) => service.get(id)));
        return all.every((job) => job?.status === 'Completed') ? all : undefined;
      },
      30_000,
      50,
    );
    const runsPerJob = new Map<string, number>();
    for (const run of runs) runsPerJob.set(run.job, (runsPerJob.get(run.job) ?? 0) + 1);
    const duplicates = [...runsPerJob.values()].reduce((sum, n) => sum + n - 1, 0);

    console.log(
      `fault memory store app.close() under load: jobs ${ids.length}, lost ${ids.length - jobs.length}, duplicate executions ${duplicates} ` +
        `(attempts released at shutdown and run again), closed in ${seconds(closeMs)} s (shutdownTimeoutMs 0.50 s) with ` +
        `${afterClose.counts.Completed} Completed, ${afterClose.counts.Queued} Queued, ${afterClose.counts.InProgress} InProgress; ` +
        `${ranInFirst} jobs had started in the first app`,
    );

    expect(afterClose.counts.InProgress).toBe(0);
    expect(afterClose.counts.Completed + afterClose.counts.Queued).toBe(ids.length);
    expect(afterClose.counts.Queued).toBeGreaterThan(0);
    // Released, not taken back: no job counts a recovery.
    for (const job of await Promise.all(ids.map((id) => store.getJob(id))))
      expect(job).toMatchObject({ status: 'Completed', recoveryCount: 0 });
    // Only attempts cut off by the shutdown ran twice.
    expect(duplicates).toBeLessThanOrEqual(8);
  }, 60_000);

  it('takes back a handler that hangs for good (recovery.jobTimeoutMinutes) within the hard cap + one sweep interval + 1 s, and completes the job and all others', async () => {
    const hardCapMs = 600;
    const sweepSeconds = 0.2;
    const service = await start('hang', {
      store: new MemoryJobStore(),
      worker: { maximumConcurrency: 4 },
      recovery: { jobTimeoutMinutes: hardCapMs / 60_000, recoveryCheckIntervalSeconds: sweepSeconds },
    });
    const hung = await service.submit('Work', { ms: 0, hang: true });
    const others = await Promise.all(Array.from({ length: 20 }, () => service.submit('Work', { ms: 20 })));
    const done = await waitFor(
      async () => {
        const job = await service.get(hung.id);
        return job?.status === 'Completed' ? job : undefined;
      },
      10_000,
      20,
    );
    const [first, second] = runs.filter((run) => run.job === hung.id);
    const recoveryMs = second!.at - first!.at;
    const othersDone = await Promise.all(others.map((job) => service.get(job.id)));

    console.log(
      `fault memory store hung handler: jobs ${others.length + 1}, lost ${othersDone.filter((job) => job?.status !== 'Completed').length}, ` +
        `duplicate executions ${runs.length - others.length - 1}, recovery ${seconds(recoveryMs)} s ` +
        `(bound ${seconds(hardCapMs + sweepSeconds * 1000)} s = recovery.jobTimeoutMinutes + sweep interval)`,
    );

    expect(done).toMatchObject({ status: 'Completed', result: { app: 'hang', attempt: 2 } });
    expect(othersDone.every((job) => job?.status === 'Completed')).toBe(true);
    expect(recoveryMs).toBeLessThanOrEqual(hardCapMs + sweepSeconds * 1000 + 1000);
  }, 30_000);

  it('runs a job on its last take-back alone: no other handler runs beside it', async () => {
    const service = await start('lone', {
      store: new MemoryJobStore(),
      worker: { maximumConcurrency: 4 },
      recovery: { jobTimeoutMinutes: 400 / 60_000, recoveryCheckIntervalSeconds: 0.1, maximumRetries: 1 },
    });
    // Hangs on its first run; taken back once, it is on its last chance (maximumRetries 1).
    const hung = await service.submit('Work', { ms: 300, hang: true });
    const others: string[] = [];
    const deadline = Date.now() + 10_000;
    let last: Awaited<ReturnType<typeof service.get>> = null;
    while (last?.status !== 'Completed' && Date.now() < deadline) {
      others.push((await service.submit('Work', { ms: 100 })).id);
      await sleep(25);
      last = await service.get(hung.id);
    }
    await waitFor(
      async () =>
        (await Promise.all(others.map((id) => service.get(id)))).every((job) => job?.status === 'Completed')
          ? true
          : undefined,
      10_000,
      20,
    );
    const lone = runs.find((run) => run.job === hung.id && run.attempt === 2)!;
    const beside = runs.filter(
      (run) => run.job !== hung.id && run.at < lone.endedAt! && (run.endedAt ?? Infinity) > lone.at,
    );
    console.log(
      `fault memory store last-chance job: jobs ${others.length + 1}, lost 0, its last run took ${seconds(lone.endedAt! - lone.at)} s ` +
        `with ${beside.length} other handler(s) running beside it`,
    );
    expect(last).toMatchObject({ status: 'Completed', result: { attempt: 2 } });
    expect(beside).toEqual([]);
    // Jobs ran before and after it: it did not simply run on an idle worker.
    expect(runs.some((run) => run.job !== hung.id && run.endedAt! <= lone.at)).toBe(true);
    expect(runs.some((run) => run.job !== hung.id && run.at >= lone.endedAt!)).toBe(true);
  }, 30_000);
});
