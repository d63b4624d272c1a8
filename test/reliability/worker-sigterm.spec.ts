import { FaultDeployment, seconds, sleep } from '../support/fault-deployment.js';

/** Long, so that a job that waited for its lease to expire would stand out. */
const LEASE_MS = 10_000;
const SWEEP_SECONDS = 1;
const SHUTDOWN_TIMEOUT_MS = 1500;
/** Well inside the grace period, and long enough that some are still running when SIGTERM lands on a loaded machine. */
const SHORT_MS = 700;
const LONG_MS = 5000;
const MARGIN_MS = 1500;

/**
 * SIGTERM to a worker process mid-run (Nest shutdown hooks): handlers that finish within
 * shutdownTimeoutMs complete there; the others are released to the queue at once when it is over,
 * not after their lease expires, and run elsewhere. No job stays InProgress.
 */
describe('SIGTERM to a worker process mid-run', () => {
  let deployment: FaultDeployment | undefined;

  beforeAll(async () => {
    deployment = await FaultDeployment.start({
      leaseMs: LEASE_MS,
      sweepSeconds: SWEEP_SECONDS,
      concurrency: 8,
      shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS,
    });
    await deployment.launch(['worker-1', 'worker-2']);
  }, 60_000);

  afterAll(async () => {
    await deployment?.dispose();
  }, 30_000);

  it('lets short jobs finish in the grace period, releases the long ones, exits within shutdownTimeoutMs + 1.5 s, and the released jobs restart elsewhere before their lease would expire, none left InProgress', async () => {
    const d = deployment!;
    const victim = d.workers.get('worker-1')!;
    const ids: string[] = [];
    for (let i = 0; i < 16; i++) {
      const answer = await d.submit({ ms: i % 2 === 0 ? SHORT_MS : LONG_MS });
      expect(answer.status).toBe(202);
      ids.push(answer.body.id!);
    }
    // Wait until worker-1 runs both kinds, then SIGTERM it.
    let held = await d.inProgress();
    const kinds = (jobs: typeof held) =>
      new Set(jobs.filter((job) => job.workerId === 'worker-1').map((job) => (job.payload as { ms: number }).ms)).size;
    for (let waited = 0; kinds(held) < 2; waited += 10) {
      if (waited > 10_000)
        throw new Error(`worker-1 did not run both kinds of jobs: ${JSON.stringify(held)}\n${d.outputs()}`);
      await sleep(10);
      held = await d.inProgress();
    }
    const termAt = Date.now();
    victim.kill('SIGTERM');
    const exit = await victim.waitForExit();
    const exitedAt = Date.now();
    const leftInProgress = (await d.inProgress()).filter((job) => job.workerId === 'worker-1');

    const jobs = await d.waitUntilTerminal(ids, 30_000);
    const executions = await d.executions();
    const starts = executions.filter((execution) => execution.phase === 'start');
    // What worker-1 ran when it got SIGTERM: its runs that had not ended by then.
    const endOf = (run: string) => executions.find((e) => e.run === run && e.phase === 'end');
    const cutOff = starts.filter(
      (start) => start.worker === 'worker-1' && !((endOf(start.run)?.at ?? Infinity) < termAt),
    );
    const finishedThere = cutOff.filter((start) => endOf(start.run) !== undefined).map((start) => start.job);
    const released = cutOff.filter((start) => endOf(start.run) === undefined).map((start) => start.job);
    const restartMs = released.map((id) => {
      const restart = starts.find((e) => e.job === id && e.worker === 'worker-2' && e.at >= termAt);
      return restart ? restart.at - termAt : Number.POSITIVE_INFINITY;
    });
    const recoveryMs = Math.max(0, ...restartMs);
    const lost = jobs.filter((job) => job?.status !== 'Completed').length;

    console.log(
      `fault SIGTERM: jobs ${ids.length}, lost ${lost}, duplicate executions ${starts.length - ids.length}, ` +
        `worker-1 ran ${cutOff.length} at SIGTERM: ${finishedThere.length} finished within shutdownTimeoutMs, ${released.length} released; ` +
        `exited after ${seconds(exitedAt - termAt)} s, InProgress left ${leftInProgress.length}; ` +
        `released jobs started again ${seconds(recoveryMs)} s after SIGTERM (shutdownTimeoutMs ${seconds(SHUTDOWN_TIMEOUT_MS)} s, lease ${seconds(LEASE_MS)} s)`,
    );

    // Nest's shutdown hooks close the app, then raise the signal again to end the process.
    expect([exit.code, exit.signal]).toEqual([null, 'SIGTERM']);
    expect(d.output(victim)).toContain(`Shutting down: waiting up to ${SHUTDOWN_TIMEOUT_MS} ms`);
    expect(exitedAt - termAt).toBeLessThanOrEqual(SHUTDOWN_TIMEOUT_MS + MARGIN_MS);
    expect(leftInProgress).toEqual([]);
    expect(finishedThere.length).toBeGreaterThan(0);
    expect(released.length).toBeGreaterThan(0);
    // The short ones finished in the grace period, the long ones were released when it ran out.
    for (const id of finishedThere) expect((jobs[ids.indexOf(id)]!.payload as { ms: number }).ms).toBe(SHORT_MS);
    for (const id of released) expect((jobs[ids.indexOf(id)]!.payload as { ms: number }).ms).toBe(LONG_MS);
    expect(d.output(victim)).toContain(
      `Shutdown grace period over: releasing ${released.length} job(s) back to the queue`,
    );
    // Released at once, well before the lease would have expired; not counted as a take-back.
    expect(recoveryMs).toBeLessThanOrEqual(SHUTDOWN_TIMEOUT_MS + MARGIN_MS);
    expect(recoveryMs).toBeLessThan(LEASE_MS);
    for (const id of released)
      expect(jobs[ids.indexOf(id)]).toMatchObject({ recoveryCount: 0, result: { worker: 'worker-2' } });
    expect(lost).toBe(0);
    expect((await d.jobs.stats(Date.now())).counts).toMatchObject({ InProgress: 0, Queued: 0, Completed: ids.length });
  }, 60_000);
});
