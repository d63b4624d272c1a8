import { JobStatus } from '../../lib/job/index.js';
import { runCommand } from '../../lib/cli/commands.js';
import type { StoreCommand } from '../../lib/cli/arguments.js';
import { MemoryJobStore } from '../../lib/store/memory/memory-job-store.js';
import type { Retention } from '../../lib/store/job-store.js';
import { newJob } from '../store-conformance/job-store.conformance.js';

const retention: Retention = { completedTtlMs: 86_400_000, failedTtlMs: 604_800_000 };

/**
 * The operator commands' per-name behaviour (routing), run in process on the memory store: the same
 * command code the CLI binary runs on Redis (test/cli/operator-cli.spec.ts spawns it).
 */
describe('operator commands by job name', () => {
  let store: MemoryJobStore;
  let out: string[];
  const run = (command: StoreCommand, json = false) =>
    runCommand(command, {
      store,
      json,
      print: (text) => out.push(text),
      warn: () => undefined,
    });

  beforeEach(async () => {
    store = new MemoryJobStore();
    await store.init();
    out = [];
  });
  afterEach(() => store.close());

  /** A job of `name` run to an end at `now`: Failed or Completed. */
  async function finished(name: string, how: 'fail' | 'complete', now = Date.now()): Promise<string> {
    const input = newJob({ name });
    await store.createJob(input, { now, maximumQueueSize: 1000 });
    const [claimed] = await store.claimDueJobs({
      workerId: 'w',
      names: [name],
      limit: 1,
      leaseMs: 30_000,
      now,
      maxConcurrentJobs: null,
    });
    if (how === 'complete') await store.completeJob(claimed!.lease, 1, { now, retention });
    else await store.failJob(claimed!.lease, { code: 'E', message: 'no' }, { now, retryAt: null, retention });
    return input.id;
  }

  it('stats prints a line per name with its workers, and flags the names with waiting jobs and no worker', async () => {
    const now = Date.now();
    await store.createJob(newJob({ name: 'Light' }), { now: now - 5000, maximumQueueSize: 1000 });
    await store.createJob(newJob({ name: 'Heavy' }), { now: now - 90_000, maximumQueueSize: 1000 });
    await store.registerWorker({ workerId: 'a', names: ['Light'] }, { now, ttlMs: 60_000 });
    await run({ name: 'stats' });
    const text = out.join('\n');
    expect(text).toMatch(/NAME\s+WAITING\s+IN PROGRESS\s+OLDEST WAITING\s+WORKERS\n/);
    expect(text).toMatch(/\nHeavy\s+1\s+0\s+due 1m \d+s ago\s+0 \(no worker runs it\)\n/);
    expect(text).toMatch(/\nLight\s+1\s+0\s+due \d+\.\ds ago\s+1\n/);
    expect(text).toContain(
      'No live worker registers a handler for Heavy: their jobs wait until a worker process with that @AsyncHandler runs.',
    );
  });

  it('list --name shows only that name, newest first, across pages of the store', async () => {
    const now = Date.now();
    const heavy: string[] = [];
    for (let i = 0; i < 1200; i++) {
      const input = newJob({ name: i % 3 === 0 ? 'Heavy' : 'Light', fingerprint: '' });
      if (i % 3 === 0) heavy.push(input.id);
      await store.createJob(input, { now: now + i, maximumQueueSize: 10_000 });
    }
    await run({ name: 'list', status: JobStatus.Queued, limit: 1000, jobName: 'Heavy' }, true);
    const listed = (JSON.parse(out.join('\n')) as { id: string; name: string }[]).map((job) => job.id);
    expect(listed).toEqual([...heavy].reverse());
  });

  it('retry --all-failed --name retries only that name, every one once', async () => {
    const heavy = [await finished('Heavy', 'fail'), await finished('Heavy', 'fail')];
    const light = await finished('Light', 'fail');
    await run({ name: 'retry-all-failed', limit: Number.MAX_SAFE_INTEGER, jobName: 'Heavy' }, true);
    expect(JSON.parse(out.join('\n'))).toEqual({ requeued: [...heavy].reverse(), skipped: [] });
    expect((await store.getJob(light))!.status).toBe(JobStatus.Failed);
  });

  it('purge --name deletes only that name', async () => {
    const now = Date.now();
    const heavy = await finished('Heavy', 'complete', now - 10_000);
    const light = await finished('Light', 'complete', now - 10_000);
    await run({
      name: 'purge',
      status: 'Completed',
      jobName: 'Heavy',
      olderThanMs: 1000,
      limit: 100,
      confirmation: 'yes',
    });
    expect(out).toEqual([expect.stringMatching(/^Purged 1 Completed job\(s\) finished before /)]);
    expect(await store.getJob(heavy)).toBeNull();
    expect((await store.getJob(light))!.status).toBe(JobStatus.Completed);
  });
});
