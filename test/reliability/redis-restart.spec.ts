import { FaultDeployment, seconds, sleep, type SubmitAnswer } from '../support/fault-deployment.js';

const LEASE_MS = 2000;
const SWEEP_SECONDS = 1;
const OUTAGE_MS = 3000;
/** The issue's bound for an answer while the store is down is 2 s; a little slack for a loaded machine. */
const ANSWER_WITHIN_MS = 3000;

interface Submitted extends SubmitAnswer {
  at: number;
}

/**
 * Redis (append-only file, fsync on every write) crashes (SIGKILL) in the middle of a run and comes
 * back on the same port, while clients keep submitting: submits in the outage get 503 problem+json at
 * once, never 500 and never a hang; every job that got a 202 ends Completed; the worker processes
 * resume by themselves.
 */
describe('Redis restarted mid-run (appendonly yes, appendfsync always)', () => {
  let deployment: FaultDeployment | undefined;

  beforeAll(async () => {
    deployment = await FaultDeployment.start({ leaseMs: LEASE_MS, sweepSeconds: SWEEP_SECONDS, concurrency: 16 }, [
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
    ]);
    await deployment.launch(['worker-1', 'worker-2']);
  }, 60_000);

  afterAll(async () => {
    await deployment?.dispose();
  }, 30_000);

  it('completes every job that got a 202, answers 503 in the outage, and the workers resume by themselves', async () => {
    const d = deployment!;
    const answers: Submitted[] = [];
    const failures: string[] = [];
    let submitting = true;
    const client = async () => {
      while (submitting) {
        const at = Date.now();
        try {
          answers.push({ ...(await d.submit({ ms: 20 + Math.floor(Math.random() * 31) })), at });
        } catch (error) {
          failures.push(`${(error as Error).name}: ${(error as Error).message}`);
        }
        await sleep(10);
      }
    };
    const clients = Array.from({ length: 6 }, client);

    await sleep(2000);
    const downAt = Date.now();
    await d.server.kill();
    await sleep(OUTAGE_MS);
    await d.server.start();
    const upAt = Date.now();
    await sleep(3000);
    submitting = false;
    await Promise.all(clients);

    const accepted = answers.filter((answer) => answer.status === 202);
    const ids = accepted.map((answer) => answer.body.id!);
    const jobs = await d.waitUntilTerminal(ids, 60_000);
    const lost = ids.filter((_, i) => jobs[i]?.status !== 'Completed');
    const executions = (await d.executions()).filter((execution) => execution.phase === 'start');
    const runs = new Map<string, number>();
    for (const execution of executions) runs.set(execution.job, (runs.get(execution.job) ?? 0) + 1);
    const duplicates = ids.reduce((sum, id) => sum + Math.max(0, (runs.get(id) ?? 0) - 1), 0);
    // Each worker's first run that began after Redis was back.
    const resumedMs = ['worker-1', 'worker-2'].map((worker) => {
      const first = executions.find((execution) => execution.worker === worker && execution.at >= upAt);
      return first ? first.at - upAt : Number.POSITIVE_INFINITY;
    });
    const inOutage = answers.filter((answer) => answer.at >= downAt && answer.at < upAt);
    const byStatus = new Map<number, number>();
    for (const answer of answers) byStatus.set(answer.status, (byStatus.get(answer.status) ?? 0) + 1);
    const stored = Object.values((await d.jobs.stats(Date.now())).counts).reduce((sum, count) => sum + count, 0);
    const slowest = Math.max(...answers.map((answer) => answer.ms));
    // A submit whose reply the crash cut off may have stored its job: its 503 must say so.
    const outcomeUnknown = answers.filter(
      (answer) => answer.status === 503 && String(answer.body.detail).includes('may or may not'),
    ).length;

    console.log(
      `fault Redis restart (${seconds(OUTAGE_MS)} s down, SIGKILL, AOF fsync always): jobs ${ids.length} accepted (202), lost ${lost.length}, ` +
        `duplicate executions ${duplicates}, answers ${[...byStatus].map(([status, n]) => `${status}: ${n}`).join(', ')} ` +
        `(slowest ${Math.round(slowest)} ms; in the outage ${inOutage.length}), jobs stored ${stored} (${stored - ids.length} without a 202; 503s saying the outcome is unknown: ${outcomeUnknown}); ` +
        `recovery: both workers ran jobs again ${seconds(Math.max(...resumedMs))} s after Redis was back`,
    );

    expect(failures).toEqual([]);
    // Only 202 or 503, nothing else, and never slowly.
    expect([...byStatus.keys()].filter((status) => status !== 202 && status !== 503)).toEqual([]);
    expect(slowest).toBeLessThan(ANSWER_WITHIN_MS);
    expect(inOutage.length).toBeGreaterThan(0);
    for (const answer of answers.filter((a) => a.status === 503)) {
      expect(answer.contentType).toMatch(/^application\/problem\+json/);
      expect(answer.body).toMatchObject({ status: 503, title: 'Service Unavailable' });
    }
    // Some were accepted before the crash and some after it.
    expect(accepted.some((answer) => answer.at < downAt)).toBe(true);
    expect(accepted.some((answer) => answer.at >= upAt)).toBe(true);
    expect(lost).toEqual([]);
    // Nothing was stored behind a client's back: a job without a 202 had a 503 saying it might exist.
    expect(stored - ids.length).toBeLessThanOrEqual(outcomeUnknown);
    expect(resumedMs.every((ms) => Number.isFinite(ms))).toBe(true);
    expect((await d.jobs.stats(Date.now())).counts).toMatchObject({
      Queued: 0,
      Scheduled: 0,
      InProgress: 0,
      Failed: 0,
    });
  }, 120_000);
});
