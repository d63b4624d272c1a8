import { FaultDeployment, seconds, sleep } from '../support/fault-deployment.js';

const LEASE_MS = 1000;
const SWEEP_SECONDS = 0.5;
/** Far past the lease: the blocked process cannot renew it, and another one takes the job back. */
const BLOCK_MS = 6000;
const MARGIN_MS = 1500;

/**
 * A handler that blocks its process's event loop (a busy loop) past its lease: lease renewal cannot
 * run, so the job is taken back and completes in the other process. When the busy loop ends, the late
 * finisher's result is refused by the fencing token: the stored result is the second attempt's.
 */
describe('A handler that blocks the event loop past its lease', () => {
  let deployment: FaultDeployment | undefined;

  beforeAll(async () => {
    deployment = await FaultDeployment.start({ leaseMs: LEASE_MS, sweepSeconds: SWEEP_SECONDS, concurrency: 4 });
    await deployment.launch(['worker-1', 'worker-2']);
  }, 60_000);

  afterAll(async () => {
    await deployment?.dispose();
  }, 30_000);

  it('is taken back within lease + sweep interval + 1.5 s and completed elsewhere; the late attempt writes nothing (refused by the fence or dropped at its lease renewal), the stored result is the lease holder’s', async () => {
    const d = deployment!;
    const answer = await d.submit({ ms: 10, blockMs: BLOCK_MS });
    expect(answer.status).toBe(202);
    const id = answer.body.id!;

    // Both attempts end: the second one elsewhere, then the blocked first one.
    const deadline = Date.now() + BLOCK_MS + 20_000;
    let executions = await d.executions();
    while (executions.filter((execution) => execution.phase === 'end').length < 2) {
      if (Date.now() > deadline)
        throw new Error(`Both attempts did not end in time: ${JSON.stringify(executions)}\n${d.outputs()}`);
      await sleep(100);
      executions = await d.executions();
    }
    const [first, second] = executions.filter((execution) => execution.phase === 'start');
    const blocked = d.workers.get(first!.worker)!;
    // Once its loop runs again, the blocked process learns that its lease is gone in one of two ways,
    // whichever answer Redis gives first: its completion is refused by the fence (the token no longer
    // holds), or its first lease renewal reports the lease lost and the attempt is dropped. Either
    // way its result is not stored (checked below).
    const refusal = 'Completed, but the lease was lost: the result is discarded';
    const dropped = 'Lease lost (the job was taken back by recovery or expired); this attempt is abandoned';
    const learned = () => [refusal, dropped].find((line) => d.output(blocked).includes(line));
    for (let waited = 0; !learned(); waited += 50) {
      if (waited > 10_000)
        throw new Error(`${first!.worker} never logged that its late attempt lost the lease\n${d.outputs()}`);
      await sleep(50);
    }
    const job = await d.jobs.getJob(id);
    const lateEnd = executions.find((execution) => execution.phase === 'end' && execution.run === first!.run)!;
    const recoveryMs = second!.at - first!.at;

    console.log(
      `fault event loop blocked ${seconds(BLOCK_MS)} s: jobs 1, lost ${job?.status === 'Completed' ? 0 : 1}, duplicate executions ${executions.filter((e) => e.phase === 'start').length - 1}, ` +
        `recovery ${seconds(recoveryMs)} s after the busy loop began (bound ${seconds(LEASE_MS + SWEEP_SECONDS * 1000)} s = lease + sweep interval); ` +
        `attempt 1 on ${first!.worker} ended ${seconds(lateEnd.at - job!.completedAt!)} s after attempt 2 on ${second!.worker} completed the job; ${learned() === refusal ? 'its result was refused by the fence' : 'its lease renewal reported the lease lost first'}`,
    );

    expect(first).toMatchObject({ attempt: 1 });
    expect(second).toMatchObject({ attempt: 2 });
    expect(second!.worker).not.toBe(first!.worker);
    expect(recoveryMs).toBeLessThanOrEqual(LEASE_MS + SWEEP_SECONDS * 1000 + MARGIN_MS);
    // The stored result is the one of the attempt that held the lease, written before the late one ended.
    expect(job).toMatchObject({
      status: 'Completed',
      recoveryCount: 1,
      result: { worker: second!.worker, attempt: 2 },
    });
    expect(lateEnd.at).toBeGreaterThan(job!.completedAt!);
    // Whichever way the late attempt learned of it (the wait above), it wrote nothing after.
    await sleep(200);
    expect(await d.jobs.getJob(id)).toEqual(job);
    expect(executions.filter((execution) => execution.phase === 'start')).toHaveLength(2);
  }, 60_000);
});
