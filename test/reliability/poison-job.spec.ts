import { FaultDeployment, seconds, sleep } from '../support/fault-deployment.js';

const LEASE_MS = 1500;
const SWEEP_SECONDS = 0.5;
const MAX_RECOVERIES = 2;
const OTHER_JOBS = 400;

/**
 * A job whose handler kills its own process (SIGKILL) every time, among ordinary jobs, while a
 * supervisor starts killed worker processes again as an orchestrator would: the poison job ends
 * Failed with JOB_RECOVERY_EXHAUSTED after recovery.maximumRetries take-backs, and every other job
 * completes.
 */
describe('A poison job that kills its worker process every time', () => {
  let deployment: FaultDeployment | undefined;
  let supervising = true;
  const restarts: { name: string; exitedAt: number; signal: NodeJS.Signals | null }[] = [];
  const supervisors: Promise<void>[] = [];

  /** Starts the worker again whenever it dies, until the test ends. */
  const supervise = async (name: string) => {
    while (supervising) {
      const exit = await deployment!.workers.get(name)!.waitForExit();
      if (!supervising) return;
      restarts.push({ name, exitedAt: Date.now(), signal: exit.signal });
      await deployment!.startWorker(name).catch(() => undefined);
    }
  };

  beforeAll(async () => {
    deployment = await FaultDeployment.start({
      leaseMs: LEASE_MS,
      sweepSeconds: SWEEP_SECONDS,
      concurrency: 8,
      maxRecoveries: MAX_RECOVERIES,
    });
    await deployment.launch(['worker-1', 'worker-2']);
    supervisors.push(supervise('worker-1'), supervise('worker-2'));
  }, 60_000);

  afterAll(async () => {
    supervising = false;
    await deployment?.dispose();
    await Promise.allSettled(supervisors);
  }, 30_000);

  it('fails the poison job with JOB_RECOVERY_EXHAUSTED and completes all the others', async () => {
    const d = deployment!;
    const others: string[] = [];

    // Ordinary jobs arrive all along, about 100 a second from four clients, so that some always run
    // beside the poison job.
    const submitOrdinary = async () => {
      const answer = await d.submit({ ms: 20 + Math.floor(Math.random() * 31) });
      expect(answer.status).toBe(202);
      others.push(answer.body.id!);
    };
    for (let i = 0; i < 10; i++) await submitOrdinary();
    const poisonAnswer = await d.submit({ ms: 0, poison: true });
    expect(poisonAnswer.status).toBe(202);
    const poisonId = poisonAnswer.body.id!;
    const submittedAt = Date.now();
    const client = async () => {
      while (others.length < OTHER_JOBS || (await d.jobs.getJob(poisonId))?.status !== 'Failed') {
        if (Date.now() - submittedAt > 60_000) throw new Error(`The poison job was not failed in 60 s\n${d.outputs()}`);
        await submitOrdinary();
        await sleep(30);
      }
    };
    await Promise.all([client(), client(), client(), client()]);
    const poison = (await d.jobs.getJob(poisonId))!;
    const failedAfterMs = poison.completedAt! - submittedAt;

    const jobs = await d.waitUntilTerminal(others, 30_000);
    const notCompleted = others
      .map((id, i) => ({
        id,
        status: jobs[i]?.status,
        error: jobs[i]?.error?.code,
        recoveries: jobs[i]?.recoveryCount,
      }))
      .filter((job) => job.status !== 'Completed');
    const executions = (await d.executions()).filter((execution) => execution.phase === 'start');
    const poisonRuns = executions.filter((execution) => execution.job === poisonId);
    const runsOfOthers = executions.filter((execution) => execution.job !== poisonId).length;
    const collateral = jobs.filter((job) => (job?.recoveryCount ?? 0) > 0).length;

    console.log(
      `fault poison job: jobs ${others.length + 1} (1 poison), lost ${notCompleted.length}, ` +
        `duplicate executions ${runsOfOthers - others.length} (of ordinary jobs; ${collateral} taken back with a killed process), ` +
        `poison runs ${poisonRuns.length} (= worker processes killed), worker restarts ${restarts.length}, ` +
        `poison Failed ${seconds(failedAfterMs)} s after its submit`,
    );

    expect(poison).toMatchObject({
      status: 'Failed',
      recoveryCount: MAX_RECOVERIES,
      error: { code: 'JOB_RECOVERY_EXHAUSTED' },
    });
    // It ran once, then once after each take-back; each run killed a worker process.
    expect(poisonRuns).toHaveLength(MAX_RECOVERIES + 1);
    expect(restarts.map((restart) => restart.signal)).toEqual(Array(MAX_RECOVERIES + 1).fill('SIGKILL'));
    expect(notCompleted).toEqual([]);
    expect((await d.jobs.stats(Date.now())).counts).toMatchObject({
      InProgress: 0,
      Queued: 0,
      Failed: 1,
      Completed: others.length,
    });
  }, 120_000);
});
