import { Injectable, type INestApplication } from '@nestjs/common';
import {
  AsyncEndpointsService,
  AsyncHandler,
  JobStore,
  type AsyncContext,
  type AsyncEndpointHandler,
  type JobDocument,
} from '../../lib/index.js';
import { waitFor } from '../support/sample-app.js';
import { startTestApp } from '../support/test-app.js';
import { STORE_KINDS, TestStores } from '../support/test-stores.js';

/**
 * Recovery takes a hung attempt back (recovery.jobTimeoutMinutes) and the same worker, having free
 * slots, claims the job again: the stale attempt must be told (its signal aborts) and must not shadow
 * the new one.
 */
describe.each(STORE_KINDS)('A job taken back from its own worker (%s store)', (kind) => {
  const stores = new TestStores(kind);
  let app: INestApplication | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });
  afterAll(() => stores.dispose());

  it('aborts the stale attempt when the same worker claims the job again, and completes the new one', async () => {
    const aborted: { run: number; reason: string }[] = [];
    let runs = 0;
    @AsyncHandler('StuckOnce')
    @Injectable()
    class StuckOnceHandler implements AsyncEndpointHandler {
      handle({ signal }: AsyncContext) {
        const run = ++runs;
        signal.addEventListener('abort', () => aborted.push({ run, reason: String(signal.reason) }));
        // The first run hangs, heedless of its signal; the second one is quick. A recovery does not
        // count as an attempt: both are attempt 1.
        return run === 1 ? new Promise<never>(() => undefined) : 'done';
      }
    }
    app = await startTestApp(
      {
        store: await stores.options(),
        worker: { maximumConcurrency: 4 },
        jobManager: { jobClaimTimeoutMs: 60_000 },
        recovery: { jobTimeoutMinutes: 0.005, recoveryCheckIntervalSeconds: 0.1 },
      },
      { providers: [StuckOnceHandler] },
    );
    const service = app.get(AsyncEndpointsService);
    const { id } = await service.submit('StuckOnce');
    const done = await waitFor(
      async () => {
        const job = await service.get(id);
        return job && ['Completed', 'Failed', 'Canceled'].includes(job.status) ? job : undefined;
      },
      5000,
      10,
    );
    expect(done).toMatchObject<Partial<JobDocument>>({ status: 'Completed', result: 'done' });
    expect((await app.get(JobStore).getJob(id))!.recoveryCount).toBe(1);
    expect(runs).toBe(2);
    // The hung first run learns that its job was taken away: its signal aborts.
    await waitFor(async () => (aborted.length > 0 ? true : undefined), 2000, 10);
    expect(aborted).toEqual([{ run: 1, reason: expect.stringContaining('was taken back from this worker') }]);
  });
});
