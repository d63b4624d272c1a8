import { FaultDeployment, inParallel, seconds, sleep } from '../support/fault-deployment.js';

const JOBS = 1000;
const LEASE_MS = 2000;
const SWEEP_SECONDS = 1;
/** Scheduling slack on a loaded two-core machine, on top of the bound the issue states. */
const MARGIN_MS = 1500;
/** One job in twenty; the others take 20-50 ms. */
const LONG_MS = 1000;

/**
 * `kill -9` of one of two worker processes in the middle of a run: nothing is lost, only the jobs
 * the dead process was running run twice, and they run again within lease + sweep interval.
 */
describe('kill -9 of one of two worker processes mid-run', () => {
  let deployment: FaultDeployment | undefined;

  beforeAll(async () => {
    deployment = await FaultDeployment.start({ leaseMs: LEASE_MS, sweepSeconds: SWEEP_SECONDS, concurrency: 16 });
    await deployment.launch(['worker-1', 'worker-2']);
  }, 60_000);

  afterAll(async () => {
    await deployment?.dispose();
  }, 30_000);

  it(`completes all ${JOBS} jobs; only the killed process's in-flight jobs run twice, again within lease + sweep interval + 1.5 s margin`, async () => {
    const d = deployment!;
    const victim = d.workers.get('worker-1')!;
    const ids: string[] = [];
    const rejected: string[] = [];
    let killedAt = 0;
    let killing: Promise<void> | undefined;
    const inFlightAtKill = new Set<string>();

    // Kills worker-1 with SIGKILL once it runs jobs, a third of the way through; then notes which jobs
    // it held. Nothing changes those until recovery takes them back: the dead process cannot, and the
    // other one has no lease on them. One of them is a long job that started moments ago, so that it
    // still runs when the signal lands even if this process stalls between the read and the kill.
    const kill = async () => {
      for (;;) {
        const held = (await d.inProgress()).filter((job) => job.workerId === 'worker-1');
        const runningLong = held.some(
          (job) => (job.payload as { ms: number }).ms === LONG_MS && Date.now() - job.startedAt! < LONG_MS / 2,
        );
        if (held.length >= 2 && runningLong) break;
        await sleep(5);
      }
      killedAt = Date.now();
      victim.kill('SIGKILL');
      await victim.waitForExit();
      for (const job of await d.inProgress()) if (job.workerId === 'worker-1') inFlightAtKill.add(job.id);
    };

    const bodies = Array.from({ length: JOBS }, (_, i) => ({
      ms: i % 20 === 0 ? LONG_MS : 20 + Math.floor(Math.random() * 31),
    }));
    await inParallel(bodies, 8, async (body, index) => {
      if (index === Math.floor(JOBS / 3)) killing = kill();
      const answer = await d.submit(body);
      if (answer.status === 202) ids.push(answer.body.id!);
      else rejected.push(`${answer.status} ${JSON.stringify(answer.body)}`);
    });
    await killing;
    expect(rejected).toEqual([]);
    expect(victim.running).toBe(false);

    const jobs = await d.waitUntilTerminal(ids, 60_000);
    const lost = ids.filter((_, i) => jobs[i]?.status !== 'Completed');
    const executions = (await d.executions()).filter((execution) => execution.phase === 'start');
    // Had this process stalled for over a second before that read, recovery may have taken some of
    // those jobs back already: they count too (started on worker-1, taken back once).
    for (const [i, job] of jobs.entries()) {
      if (job?.recoveryCount && executions.some((e) => e.job === ids[i] && e.worker === 'worker-1'))
        inFlightAtKill.add(ids[i]!);
    }
    const runsPerJob = new Map<string, number>();
    for (const execution of executions) runsPerJob.set(execution.job, (runsPerJob.get(execution.job) ?? 0) + 1);
    const duplicated = [...runsPerJob].filter(([, runs]) => runs > 1).map(([id]) => id);
    const duplicates = [...runsPerJob.values()].reduce((sum, runs) => sum + runs - 1, 0);
    // When each job the dead process held started again elsewhere.
    const restartMs = [...inFlightAtKill].map((id) => {
      const restart = executions.find(
        (execution) => execution.job === id && execution.worker !== 'worker-1' && execution.at >= killedAt,
      );
      return restart ? restart.at - killedAt : Number.POSITIVE_INFINITY;
    });
    const recoveryMs = Math.max(...restartMs);

    console.log(
      `fault kill -9: jobs ${ids.length}, lost ${lost.length}, duplicate executions ${duplicates} ` +
        `(jobs in flight in the killed process: ${inFlightAtKill.size}), ` +
        `recovery ${seconds(recoveryMs)} s (bound ${seconds(LEASE_MS + SWEEP_SECONDS * 1000)} s = lease + sweep interval), ` +
        `executions ${executions.length}, runs by worker-1 ${executions.filter((e) => e.worker === 'worker-1').length}`,
    );

    expect(ids).toHaveLength(JOBS);
    expect(lost).toEqual([]);
    for (const id of ids) expect(runsPerJob.get(id) ?? 0).toBeGreaterThanOrEqual(1);
    // Only the jobs the killed process was running ran twice, each at most twice.
    expect(inFlightAtKill.size).toBeGreaterThan(0);
    expect(duplicated.filter((id) => !inFlightAtKill.has(id))).toEqual([]);
    expect(duplicates).toBeLessThanOrEqual(inFlightAtKill.size);
    for (const id of inFlightAtKill) {
      expect(jobs[ids.indexOf(id)]).toMatchObject({
        status: 'Completed',
        recoveryCount: 1,
        result: { worker: 'worker-2' },
      });
    }
    expect(recoveryMs).toBeLessThanOrEqual(LEASE_MS + SWEEP_SECONDS * 1000 + MARGIN_MS);
    expect((await d.jobs.stats(Date.now())).counts).toMatchObject({
      Queued: 0,
      Scheduled: 0,
      InProgress: 0,
      Completed: JOBS,
    });
  }, 120_000);
});
