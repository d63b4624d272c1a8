import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisJobStore } from '../../lib/store/redis/redis-job-store.js';
import { getJobs } from '../support/fault-deployment.js';
import { CompiledProcesses, NodeProcess } from '../support/node-processes.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { RedisServer } from '../support/redis-server.js';

const JOBS = 3000;
const IN_FLIGHT = 50;
const WORKERS = 3;

interface Ready {
  port: number | null;
  workerId: string;
}

/** Calls per Redis command since the server started (INFO commandstats). */
async function commandCalls(redis: Redis): Promise<Record<string, number>> {
  const calls: Record<string, number> = {};
  for (const match of (await redis.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    calls[match[1]!] = Number(match[2]);
  }
  return calls;
}

describe('Three worker processes and one API process on one Redis', () => {
  const keyPrefix = `{ae-multi-${randomUUID()}}`;
  const counterPrefix = `counter-${randomUUID()}`;
  const processes: NodeProcess[] = [];
  let compiled: CompiledProcesses | undefined;
  let server: RedisServer | undefined;
  let admin: Redis | undefined;
  let store: RedisJobStore | undefined;
  let apiUrl = '';
  const ids: string[] = [];

  beforeAll(async () => {
    compiled = await CompiledProcesses.compile();
    server = await RedisServer.start();
    admin = new Redis(server.url);
    store = new RedisJobStore({ url: server.url, keyPrefix, logger: new RecordingLogger() });
    await store.init();
    const env = { REDIS_URL: server.url, KEY_PREFIX: keyPrefix, COUNTER_PREFIX: counterPrefix };
    const entry = compiled.entry('counter-app');
    const started = await Promise.allSettled([
      NodeProcess.start<Ready>('api', entry, { ...env, ROLE: 'api', INSTANCE_ID: 'api' }),
      ...Array.from({ length: WORKERS }, (_, i) =>
        NodeProcess.start<Ready>(`worker-${i + 1}`, entry, { ...env, ROLE: 'worker', INSTANCE_ID: `worker-${i + 1}` }),
      ),
    ]);
    for (const result of started) if (result.status === 'fulfilled') processes.push(result.value.process);
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    const [api] = started as PromiseFulfilledResult<{ process: NodeProcess; ready: Ready }>[];
    apiUrl = `http://127.0.0.1:${api!.value.ready.port}`;
  }, 60_000);

  afterAll(async () => {
    await Promise.all(processes.map((child) => child.stop(5000)));
    await store?.close();
    await admin?.quit();
    await server?.dispose();
  });

  /** Each process's last lines, for a failure message. */
  const outputs = () => processes.map((child) => `--- ${child.name}\n${child.tail(15)}`).join('\n');

  it(`runs ${JOBS} jobs submitted over HTTP exactly once each, none lost`, async () => {
    const callsBefore = await commandCalls(admin!);
    const started = performance.now();

    // Submit through the API process, IN_FLIGHT requests at a time.
    const rejected: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < JOBS) {
          const n = next++;
          const response = await fetch(`${apiUrl}/api/count`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ n }),
          });
          const body = (await response.json()) as { id: string };
          if (response.status === 202) ids.push(body.id);
          else rejected.push(`#${n}: ${response.status} ${JSON.stringify(body)}`);
        }
      }),
    );
    const submittedMs = performance.now() - started;
    expect(rejected).toEqual([]);
    expect(new Set(ids).size).toBe(JOBS);

    // Every job Completed, found through the store's counts.
    const deadline = Date.now() + 45_000;
    let counts = (await store!.stats(Date.now())).counts;
    while (counts.Completed < JOBS) {
      if (Date.now() > deadline)
        throw new Error(`Not all jobs completed in time: ${JSON.stringify(counts)}\n${outputs()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
      counts = (await store!.stats(Date.now())).counts;
    }
    const doneMs = performance.now() - started;
    const callsAfter = await commandCalls(admin!);

    expect(counts).toEqual({ Queued: 0, Scheduled: 0, InProgress: 0, Completed: JOBS, Failed: 0, Canceled: 0 });
    const jobs = await getJobs(store!, ids);
    const perWorker = new Map<string, number>();
    for (const job of jobs) {
      expect(job).toMatchObject({ status: 'Completed', retryCount: 0, recoveryCount: 0, result: { runs: 1 } });
      const workerId = (job!.result as { workerId: string }).workerId;
      perWorker.set(workerId, (perWorker.get(workerId) ?? 0) + 1);
    }
    // Each handler run left its mark: exactly one INCR per job, and none for anything else.
    const counters = await admin!.mget(ids.map((id) => `${counterPrefix}:${id}`));
    expect(counters.filter((value) => value !== '1')).toEqual([]);
    expect((await admin!.keys(`${counterPrefix}:*`)).length).toBe(JOBS);
    // All three worker processes took part.
    expect([...perWorker.keys()].sort()).toEqual(['worker-1', 'worker-2', 'worker-3']);

    const scriptCalls = (name: string) => (callsAfter[name] ?? 0) - (callsBefore[name] ?? 0);
    const scriptsPerJob = (scriptCalls('evalsha') + scriptCalls('eval')) / JOBS;
    console.log(
      [
        `multi-process: ${JOBS} jobs, 1 API + ${WORKERS} worker processes, ${IN_FLIGHT} submits in flight`,
        `  submitted in ${Math.round(submittedMs)} ms (${Math.round(JOBS / (submittedMs / 1000))} submits/s)`,
        `  all Completed after ${Math.round(doneMs)} ms (${Math.round(JOBS / (doneMs / 1000))} jobs/s end to end)`,
        `  jobs per worker: ${[...perWorker]
          .sort()
          .map(([id, count]) => `${id} ${count}`)
          .join(', ')}`,
        `  store scripts run per job (EVALSHA + EVAL, all processes, incl. claims, renewals, idle polls): ${scriptsPerJob.toFixed(2)}`,
      ].join('\n'),
    );
  }, 60_000);

  it('stops every process gracefully on SIGTERM, leaving no job InProgress', async () => {
    const stopped = await Promise.all(processes.map(async (child) => ({ name: child.name, ...(await child.stop()) })));
    for (const how of stopped) expect(how).toMatchObject({ graceful: true });
    expect((await store!.stats(Date.now())).inProgress).toBe(0);
    // Nothing went wrong on the way: no process logged an error.
    const withErrors = processes.filter((child) => child.tail(Number.MAX_SAFE_INTEGER).includes('ERROR'));
    expect(withErrors.map((child) => `${child.name}:\n${child.tail()}`)).toEqual([]);
  }, 30_000);
});
