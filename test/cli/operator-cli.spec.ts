import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { JobStatus } from '../../lib/job/index.js';
import type { NewJob, Retention } from '../../lib/store/job-store.js';
import { RedisJobStore } from '../../lib/store/redis/redis-job-store.js';
import { newJob } from '../store-conformance/job-store.conformance.js';
import { runCliInProcess, runCliProcess, type CliRun } from '../support/cli-process.js';
import { CompiledProcesses } from '../support/node-processes.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { freePort, RedisServer } from '../support/redis-server.js';

// The operator CLI against a real redis-server, with jobs made through RedisJobStore: its entry point
// (runCli) in this process for most runs (a `node` start per run made this file the slowest of the
// suite), and as users run it, the compiled `lib/cli/main.js` in its own `node` process, where the
// process itself is what is asserted: its exit code for usage, bad command lines and an unreachable Redis.

const DAY = 86_400_000;
const retention: Retention = { completedTtlMs: 30 * DAY, failedTtlMs: 30 * DAY };

let compiled: CompiledProcesses;
let server: RedisServer;
let cliPath: string;
const stores: RedisJobStore[] = [];

beforeAll(async () => {
  compiled = await CompiledProcesses.compile();
  cliPath = join(compiled.outDir, 'lib', 'cli', 'main.js');
  server = await RedisServer.start();
});

afterAll(async () => {
  await Promise.all(stores.map((store) => store.close()));
  await server?.dispose();
});

/** Runs the CLI in this process; REDIS_URL and REDIS_PASSWORD come only from `env`. */
function cli(args: readonly string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runCliInProcess(args, env);
}

/** Runs the compiled CLI in its own `node` process, as users do. */
function cliProcess(args: readonly string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runCliProcess(cliPath, args, env);
}

/** An empty store of its own (a key prefix of its own), with helpers to put jobs in given states. */
async function freshStore() {
  const keyPrefix = `{cli-${randomUUID()}}`;
  const store = new RedisJobStore({ url: server.url, keyPrefix, logger: new RecordingLogger() });
  await store.init();
  stores.push(store);
  const create = async (now = Date.now(), overrides: Partial<NewJob> = {}) => {
    const input = newJob(overrides);
    await store.createJob(input, { now, maximumQueueSize: 1_000_000 });
    return input.id;
  };
  const claimOne = async (now = Date.now(), leaseMs = 30_000, names = ['Process']) => {
    const [claimed] = await store.claimDueJobs({
      workerId: 'worker-7',
      names,
      limit: 1,
      leaseMs,
      now,
      maxConcurrentJobs: null,
    });
    return claimed!;
  };
  const failed = async (code = 'DOWNSTREAM_DOWN', now = Date.now()) => {
    const id = await create(now);
    const { lease } = await claimOne(now);
    await store.failJob(
      lease,
      { code, message: `the downstream service said no to ${id}` },
      { now, retryAt: null, retention },
    );
    return id;
  };
  const completed = async (now = Date.now()) => {
    const id = await create(now);
    const { lease } = await claimOne(now);
    await store.completeJob(lease, { ok: true }, { now, retention });
    return id;
  };
  const run = (args: readonly string[]) => cli([...args, '--redis-url', server.url, '--key-prefix', keyPrefix]);
  return { store, keyPrefix, create, claimOne, failed, completed, run };
}

describe('the package', () => {
  it('ships the CLI as its bin, a node script', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      bin: Record<string, string>;
    };
    expect(pkg.bin).toEqual({ 'nestjs-async-endpoints': './dist/cli/main.js' });
    expect(readFileSync(new URL('../../lib/cli/main.ts', import.meta.url), 'utf8').split('\n')[0]).toBe(
      '#!/usr/bin/env node',
    );
  });
});

describe('usage', () => {
  it('prints the usage on --help and exits 0', async () => {
    const run = await cliProcess(['--help']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toContain('Usage: nestjs-async-endpoints <command> [options]');
    for (const command of ['stats', 'list', 'retry', 'cancel', 'recover', 'purge', 'migrate'])
      expect(run.stdout).toContain(`  ${command}`);
  });

  it('rejects bad command lines with exit code 2, the reason and the usage on stderr, without touching Redis', async () => {
    const url = ['--redis-url', 'redis://127.0.0.1:1'];
    const cases: [string[], string | RegExp][] = [
      [[], 'No command given.'],
      [['frobnicate', ...url], "Unknown command 'frobnicate'"],
      [['stats', '--bogus', ...url], "Unknown option '--bogus'"],
      [['stats', '--status', 'Failed', ...url], 'stats does not take --status.'],
      [['stats', 'extra', ...url], "stats takes no arguments (got 'extra')."],
      [
        ['stats'],
        'No Redis to talk to: pass --redis-url <url> or set REDIS_URL (one Redis), or pass --cluster-nodes <host:port,...> or set REDIS_CLUSTER_NODES (a Redis Cluster).',
      ],
      [
        ['stats', '--redis-url', 'localhost:6379'],
        "--redis-url 'localhost:6379' must start with redis:// or rediss://",
      ],
      [['stats', ...url, '--key-prefix', 'no-tag'], /--key-prefix: .*has no hash tag/],
      [['list', ...url], 'list needs --status.'],
      [
        ['list', '--status', 'Broken', ...url],
        "--status 'Broken' is not one of Queued, Scheduled, InProgress, Completed, Failed, Canceled.",
      ],
      [['list', '--status', 'Failed', '--limit', '0', ...url], "--limit '0' must be a whole number of at least 1."],
      [['list', '--status', 'Failed', '--limit', 'ten', ...url], "--limit 'ten' must be a whole number"],
      [['list', '--status', ...url], '--status needs a value.'],
      [['list', '--redis-url', 'redis://127.0.0.1:1', '--status'], '--status needs a value.'],
      [['stats', '--json=yes', ...url], "Option '--json' does not take an argument."],
      [['retry', ...url], 'retry needs a job id: retry <id> or retry --all-failed.'],
      [['retry', 'a', 'b', ...url], 'retry takes one job id, got 2.'],
      [['retry', randomUUID(), '--all-failed', ...url], 'retry takes either a job id or --all-failed, not both.'],
      [['retry', randomUUID(), '--limit', '3', ...url], 'retry <id> does not take --limit'],
      [['retry', randomUUID(), '--name', 'Process', ...url], 'retry <id> does not take --name'],
      [['list', '--status', 'Failed', '--name', ' ', ...url], '--name needs a job name, such as --name Process.'],
      [['stats', '--name', 'Process', ...url], 'stats does not take --name.'],
      [['cancel', ...url], 'cancel needs a job id: cancel <id>.'],
      [['recover', '--max-recoveries=-1', ...url], "--max-recoveries '-1' must be a whole number of at least 0."],
      [['recover', '--wait', 'soon', ...url], "--wait 'soon' is not a duration"],
      [['purge', '--status', 'Completed', ...url], 'purge needs --older-than.'],
      [['purge', '--older-than', '7d', ...url], 'purge needs --status.'],
      [
        ['purge', '--status', 'Queued', '--older-than', '7d', ...url],
        "--status 'Queued' is not one of Completed, Failed, Canceled.",
      ],
      [
        ['purge', '--status', 'Completed', '--older-than', '7', ...url],
        "--older-than '7' is not a duration: use a number and a unit",
      ],
      [['purge', '--status', 'Completed', '--older-than', '7y', ...url], "--older-than '7y' is not a duration"],
      [
        ['purge', '--status', 'Completed', '--older-than', '7d', '--dry-run', '--yes', ...url],
        'purge takes --dry-run or --yes, not both.',
      ],
      [['stats', '--yes', ...url], 'stats does not take --yes.'],
      [['migrate', '--partitions', '0', ...url], "--partitions '0' must be a whole number of at least 1."],
      [['migrate', '--dry-run', '--yes', ...url], 'migrate takes --dry-run or --yes, not both.'],
      [['migrate', 'now', ...url], "migrate takes no arguments (got 'now')."],
      [['stats', '--force', ...url], 'stats does not take --force.'],
    ];
    // The first one also as the compiled command: the process exits 2.
    const runs = await Promise.all([cliProcess(cases[0]![0]), ...cases.map(([args]) => cli(args))]);
    [cases[0]!, ...cases].forEach(([args, message], i) => {
      const run = runs[i]!;
      expect({ args, code: run.code, stdout: run.stdout }).toEqual({ args, code: 2, stdout: '' });
      expect(run.stderr.split('\n')[0]).toMatch(typeof message === 'string' ? `Error: ${message}` : message);
      expect(run.stderr).toContain('Usage: nestjs-async-endpoints <command> [options]');
    });
  });

  it('exits 1 with one clear line in under 5 s when Redis is unreachable, the password masked', async () => {
    const port = await freePort();
    const run = await cliProcess(['stats'], { REDIS_URL: `redis://:hunter2@127.0.0.1:${port}` });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim().split('\n')).toEqual([
      `Error: Cannot connect to Redis at redis://:***@127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`,
    ]);
    expect(run.ms).toBeLessThan(5000);
  });
});

describe('a Redis with a password', () => {
  let secured: RedisServer | undefined;

  afterAll(async () => {
    await secured?.dispose();
  });

  it('takes the password from the URL or from REDIS_PASSWORD, and says where it goes when it is missing or wrong', async () => {
    secured = await RedisServer.start(['--requirepass', 'pa55word']);
    const [inUrl, inEnv, missing, wrong] = await Promise.all([
      cli(['stats', '--json', '--redis-url', `redis://:pa55word@127.0.0.1:${secured.port}`]),
      cli(['stats', '--json', '--redis-url', secured.url], { REDIS_PASSWORD: 'pa55word' }),
      cli(['stats', '--redis-url', secured.url]),
      cli(['stats', '--redis-url', `redis://:nope@127.0.0.1:${secured.port}`]),
    ]);
    expect(inUrl.code).toBe(0);
    expect(inEnv.code).toBe(0);
    expect(JSON.parse(inEnv.stdout)).toMatchObject({ waiting: 0 });
    const hint = '(give the password in the URL, redis://:<password>@host:port, or in REDIS_PASSWORD)';
    expect(missing).toMatchObject({ code: 1, stdout: '' });
    expect(missing.stderr).toMatch(`Error: Cannot connect to Redis at ${secured.url}: NOAUTH `);
    expect(missing.stderr.trim().endsWith(hint)).toBe(true);
    expect(wrong.stderr).toMatch(`Error: Cannot connect to Redis at redis://:***@127.0.0.1:${secured.port}: WRONGPASS`);
    expect(wrong.stderr.trim().endsWith(hint)).toBe(true);
    expect(wrong.stderr).not.toContain('nope');
  });
});

describe('stats', () => {
  it('shows counts per status and the age of the oldest waiting job, as a table or as JSON', async () => {
    const { create, completed, failed, run } = await freshStore();
    await completed(Date.now() - 10_000);
    await failed();
    await create(Date.now() - 4000);
    await create();

    const table = await run(['stats']);
    expect(table).toMatchObject({ code: 0, stderr: '' });
    expect(table.stdout).toMatch(
      /^STATUS\s+JOBS\nQueued\s+2\nScheduled\s+0\nInProgress\s+0\nCompleted\s+1\nFailed\s+1\nCanceled\s+0\n/,
    );
    expect(table.stdout).toContain('Waiting (Queued + Scheduled): 2');
    // Due 4 s before the run, plus however long the CLI took to start on a busy machine.
    const age = Number(/Oldest waiting job: due (\d+\.\d)s ago/.exec(table.stdout)?.[1]);
    expect(age).toBeGreaterThanOrEqual(4);
    expect(age).toBeLessThan(30);

    const json = await run(['stats', '--json']);
    expect(json.code).toBe(0);
    const stats = JSON.parse(json.stdout) as {
      counts: Record<string, number>;
      waiting: number;
      oldestWaitingAgeMs: number;
    };
    expect(stats).toMatchObject({
      counts: { Queued: 2, Scheduled: 0, InProgress: 0, Completed: 1, Failed: 1, Canceled: 0 },
      waiting: 2,
      inProgress: 0,
    });
    expect(stats.oldestWaitingAgeMs).toBeGreaterThanOrEqual(4000);
  });

  it('reads the store at the default key prefix and REDIS_URL when no option names them', async () => {
    const store = new RedisJobStore({ url: server.url, logger: new RecordingLogger() });
    await store.init();
    stores.push(store);
    await store.createJob(newJob(), { now: Date.now(), maximumQueueSize: 100 });
    const run = await cli(['stats', '--json'], { REDIS_URL: server.url });
    expect(run.code).toBe(0);
    expect((JSON.parse(run.stdout) as { counts: { Queued: number } }).counts.Queued).toBe(1);
  });
});

describe('list', () => {
  it('lists the jobs of one status with their errors, within --limit', async () => {
    const { create, failed, run } = await freshStore();
    const ids = [
      await failed('TIMEOUT_A', Date.now() - 3000),
      await failed('TIMEOUT_B', Date.now() - 2000),
      await failed('TIMEOUT_C'),
    ];
    await create();

    const all = await run(['list', '--status', 'Failed', '--limit', '50']);
    expect(all).toMatchObject({ code: 0, stderr: '' });
    const lines = all.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+NAME\s+RETRIES\s+CREATED\s+LAST UPDATE\s+ERROR$/);
    // Most recently failed first.
    expect(lines.slice(1, 4).map((line) => line.split(/\s+/)[0])).toEqual([...ids].reverse());
    expect(lines[1]).toMatch(/Process\s+0\/3\s+\S+Z\s+\S+Z\s+TIMEOUT_C: the downstream service said no to/);
    expect(lines.at(-1)).toBe('3 Failed job(s), newest first.');

    const limited = await run(['list', '--status', 'failed', '--limit', '2']);
    expect(limited.stdout.trim().split('\n').at(-1)).toBe('2 of 3 Failed jobs (--limit 2), newest first.');

    const json = await run(['list', '--status', 'Failed', '--json']);
    const documents = JSON.parse(json.stdout) as Record<string, unknown>[];
    expect(documents).toHaveLength(3);
    expect(documents[0]).toMatchObject({
      id: ids[2],
      name: 'Process',
      status: 'Failed',
      error: { code: 'TIMEOUT_C' },
      recoveryCount: 0,
      workerId: null,
    });
    expect(documents[0]).not.toHaveProperty('payload');

    expect(await run(['list', '--status', 'Canceled'])).toMatchObject({ code: 0, stdout: 'No Canceled jobs.\n' });
  });
});

describe('retry', () => {
  it('puts a Failed job back in the queue with a fresh attempt budget', async () => {
    const { store, failed, run } = await freshStore();
    const id = await failed();
    const result = await run(['retry', id]);
    expect(result).toMatchObject({
      code: 0,
      stderr: '',
      stdout: `Job ${id} (Process) is Queued again, with up to 4 attempts.\n`,
    });
    expect(await store.getJob(id)).toMatchObject({
      status: JobStatus.Queued,
      retryCount: 0,
      completedAt: null,
      error: { code: 'DOWNSTREAM_DOWN' },
    });
    const [claimed] = await store.claimDueJobs({
      workerId: 'w',
      names: ['Process'],
      limit: 1,
      leaseMs: 1000,
      now: Date.now(),
      maxConcurrentJobs: null,
    });
    expect(claimed!.job.id).toBe(id);
  });

  it('retries a Canceled job, and refuses live, Completed and unknown jobs with exit code 1', async () => {
    const { store, create, completed, run } = await freshStore();
    const done = await completed();
    const canceled = await create();
    await store.cancelJob(canceled, { now: Date.now(), retention });
    expect((await run(['retry', canceled, '--json'])).code).toBe(0);
    expect((await store.getJob(canceled))!.status).toBe(JobStatus.Queued);

    const unknown = randomUUID();
    const [queuedRun, doneRun, unknownRun] = await Promise.all([
      run(['retry', canceled]),
      run(['retry', done]),
      run(['retry', unknown]),
    ]);
    expect(queuedRun).toMatchObject({
      code: 1,
      stdout: '',
      stderr: `Error: Job ${canceled} is Queued: only Failed or Canceled jobs can be retried.\n`,
    });
    expect(doneRun).toMatchObject({
      code: 1,
      stderr: `Error: Job ${done} is Completed: only Failed or Canceled jobs can be retried.\n`,
    });
    expect(unknownRun).toMatchObject({
      code: 1,
      stderr: `Error: Job ${unknown} not found (unknown id, or deleted after its retention).\n`,
    });
    expect((await store.getJob(done))!.status).toBe(JobStatus.Completed);
  });

  it('retries every Failed job with --all-failed, or the most recent ones with --limit', async () => {
    const { store, failed, completed, run } = await freshStore();
    const ids = [
      await failed('A', Date.now() - 3000),
      await failed('B', Date.now() - 2000),
      await failed('C', Date.now() - 1000),
    ];
    const done = await completed();

    const first = await run(['retry', '--all-failed', '--limit', '1', '--json']);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual({ requeued: [ids[2]], skipped: [] });

    const rest = await run(['retry', '--all-failed']);
    expect(rest).toMatchObject({ code: 0, stderr: '', stdout: 'Requeued 2 Failed job(s).\n' });
    for (const id of ids) expect((await store.getJob(id))!.status).toBe(JobStatus.Queued);
    expect((await store.getJob(done))!.status).toBe(JobStatus.Completed);

    expect(await run(['retry', '--all-failed'])).toMatchObject({ code: 0, stdout: 'No Failed jobs.\n' });
  });
});

describe('cancel', () => {
  it('cancels a waiting job at once and asks the worker of a running one to abort it', async () => {
    const { store, create, claimOne, run } = await freshStore();
    const running = await create(Date.now() - 1000);
    await claimOne();
    const queued = await create();

    expect(await run(['cancel', queued])).toMatchObject({
      code: 0,
      stderr: '',
      stdout: `Job ${queued} (Process) canceled.\n`,
    });
    expect((await store.getJob(queued))!.status).toBe(JobStatus.Canceled);

    const requested = await run(['cancel', running]);
    expect(requested).toMatchObject({ code: 0, stderr: '' });
    expect(requested.stdout).toBe(
      `Job ${running} (Process) is running on worker worker-7: cancellation requested; its handler is aborted and the job ends Canceled.\n`,
    );
    expect(await store.getJob(running)).toMatchObject({ status: JobStatus.InProgress, cancelRequested: true });
  });

  it('exits 1 for a finished or unknown job', async () => {
    const { completed, run } = await freshStore();
    const done = await completed();
    const unknown = randomUUID();
    expect(await run(['cancel', done])).toMatchObject({
      code: 1,
      stdout: '',
      stderr: `Error: Job ${done} is already Completed: there is nothing to cancel.\n`,
    });
    expect(await run(['cancel', unknown, '--json'])).toMatchObject({
      code: 1,
      stderr: `Error: Job ${unknown} not found (unknown id, or deleted after its retention).\n`,
    });
  });
});

describe('recover', () => {
  it('takes back jobs whose lease expired, now', async () => {
    const { store, create, claimOne, run } = await freshStore();
    const abandoned = await create();
    await claimOne(Date.now(), 50);
    const healthy = await create();
    await claimOne(Date.now(), 60_000);
    await new Promise((resolve) => setTimeout(resolve, 100));

    const result = await run(['recover']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toBe(
      'Recovery: 1 job(s) requeued, 0 failed with JOB_RECOVERY_EXHAUSTED, 0 canceled, 0 broken queue entr(ies) removed.\n' +
        `Requeued: ${abandoned}\n`,
    );
    expect(await store.getJob(abandoned)).toMatchObject({ status: JobStatus.Queued, recoveryCount: 1 });
    expect((await store.getJob(healthy))!.status).toBe(JobStatus.InProgress);
  });

  it('fails a job past --max-recoveries, and takes back jobs InProgress past --max-in-progress', async () => {
    const { store, create, claimOne, run } = await freshStore();
    const expired = await create(Date.now() - 1000);
    await claimOne(Date.now(), 10);
    const overdue = await create(Date.now() - 200_000);
    await claimOne(Date.now() - 120_000, 600_000);
    await new Promise((resolve) => setTimeout(resolve, 50));

    const result = await run(['recover', '--max-recoveries', '0', '--max-in-progress', '1m', '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      requeued: [],
      exhausted: expect.arrayContaining([expired, overdue]),
      canceled: [],
      removedEntries: 0,
    });
    expect(await store.getJob(expired)).toMatchObject({
      status: JobStatus.Failed,
      error: { code: 'JOB_RECOVERY_EXHAUSTED' },
    });
  });

  it('waits for the recovery lock of a running sweep, and gives up after --wait with exit code 1', async () => {
    const { store, run } = await freshStore();
    const sweep = { maxInProgressMs: 3_600_000, maxRecoveries: 2, retention };
    expect(await store.recoverJobs({ ...sweep, now: Date.now(), lockMs: 60_000 })).not.toBeNull();
    const held = await run(['recover', '--wait', '600ms']);
    expect(held.code).toBe(1);
    expect(held.stderr).toContain('A running app holds the recovery lock (its own sweep); waiting for it...');
    expect(held.stderr).toContain('Error: The recovery lock stayed held by another process for 600ms');

    // A lock that frees while the CLI waits.
    const other = await freshStore();
    expect(await other.store.recoverJobs({ ...sweep, now: Date.now(), lockMs: 1500 })).not.toBeNull();
    const waited = await other.run(['recover', '--wait', '10s']);
    expect(waited.code).toBe(0);
    expect(waited.stdout).toContain('Recovery: 0 job(s) requeued');
  });
});

describe('purge', () => {
  it('deletes the jobs of one terminal status finished before now - duration', async () => {
    const { store, completed, failed, create, run } = await freshStore();
    const old = [await completed(Date.now() - 9 * DAY), await completed(Date.now() - 8 * DAY)];
    const recent = await completed(Date.now() - DAY);
    const oldFailed = await failed('E', Date.now() - 9 * DAY);
    const queued = await create(Date.now() - 9 * DAY);

    const result = await run(['purge', '--status', 'Completed', '--older-than', '7d', '--yes']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/^Purged 2 Completed job\(s\) finished before \d{4}-\d\d-\d\dT[\d:.]+Z\.\n$/);
    for (const id of old) expect(await store.getJob(id)).toBeNull();
    expect((await store.getJob(recent))!.status).toBe(JobStatus.Completed);
    expect((await store.getJob(oldFailed))!.status).toBe(JobStatus.Failed);
    expect((await store.getJob(queued))!.status).toBe(JobStatus.Queued);
    expect((await store.stats(Date.now())).counts).toMatchObject({ Completed: 1, Failed: 1, Queued: 1 });

    const json = await run(['purge', '--status', 'failed', '--older-than', '12h', '--json', '--yes']);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 'Failed', purged: 1, ids: [oldFailed] });
    expect(await run(['purge', '--status', 'Completed', '--older-than', '2w', '--yes'])).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^Purged 0 /),
    });
  });

  it('stops at --limit', async () => {
    const { store, completed, run } = await freshStore();
    for (let i = 0; i < 5; i++) await completed(Date.now() - 2 * DAY + i);
    const result = await run([
      'purge',
      '--status',
      'Completed',
      '--older-than',
      '1d',
      '--limit',
      '3',
      '--json',
      '--yes',
    ]);
    expect(JSON.parse(result.stdout)).toMatchObject({ purged: 3 });
    expect((await store.stats(Date.now())).counts.Completed).toBe(2);
  });
});

describe('purge confirmation', () => {
  const cutoff = /finished before \d{4}-\d\d-\d\dT[\d:.]+Z/;

  it('with --dry-run lists the jobs it would delete, deletes nothing and exits 0', async () => {
    const { store, completed, run } = await freshStore();
    const old = [await completed(Date.now() - 9 * DAY), await completed(Date.now() - 8 * DAY)];
    const recent = await completed(Date.now() - DAY);

    const result = await run(['purge', '--status', 'Completed', '--older-than', '7d', '--dry-run']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const [summary, ...ids] = result.stdout.trim().split('\n');
    expect(summary).toMatch(new RegExp(`^Would purge 2 Completed job\\(s\\) ${cutoff.source}:$`));
    expect(ids.sort()).toEqual([...old].sort());

    const json = await run(['purge', '--status', 'Completed', '--older-than', '7d', '--dry-run', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({
      status: 'Completed',
      dryRun: true,
      wouldPurge: 2,
      ids: expect.arrayContaining(old),
    });
    for (const id of [...old, recent]) expect((await store.getJob(id))!.status).toBe(JobStatus.Completed);
  });

  it('without --yes lists what it would delete, deletes nothing, says how to confirm and exits 1', async () => {
    const { store, completed, run } = await freshStore();
    const old = await completed(Date.now() - 9 * DAY);

    const result = await run(['purge', '--status', 'Completed', '--older-than', '7d']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(new RegExp(`^Would purge 1 Completed job\\(s\\) ${cutoff.source}:\n${old}\n$`));
    expect(result.stderr).toBe(
      'Error: Nothing was deleted: purge deletes only with --yes. Run the same command with --yes to delete this job, ' +
        'or with --dry-run to only list them.\n',
    );
    expect((await store.getJob(old))!.status).toBe(JobStatus.Completed);
  });
});

describe('a --key-prefix with nothing under it', () => {
  it('still answers (zeros, exit 0) but warns on stderr, naming the prefix and --key-prefix, and records no partition count there', async () => {
    const { completed, run } = await freshStore();
    await completed();
    const unused = `{cli-typo-${randomUUID()}}`;
    const result = await cli(['stats', '--json', '--redis-url', server.url, '--key-prefix', unused]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ waiting: 0, counts: { Completed: 0 } });
    expect(result.stderr).toBe(
      `Warning: nothing is stored under the key prefix '${unused}' at ${server.url}: no job was ever stored there. ` +
        "If that is unexpected, check --key-prefix: it must be the app's store.keyPrefix (default {async-endpoints}).\n",
    );
    expect(await run(['stats'])).toMatchObject({ code: 0, stderr: '' });
    // The first app to start there chooses the partition count (the CLI's store would have chosen 1).
    const app = new RedisJobStore({ url: server.url, keyPrefix: unused, partitions: 4, logger: new RecordingLogger() });
    stores.push(app);
    await expect(app.init()).resolves.toBeUndefined();
  });
});

describe('a store written with several partitions', () => {
  it('is read with the partition count its apps wrote, and a typo prefix still warns on every run', async () => {
    const keyPrefix = `{cli-${randomUUID()}}`;
    const store = new RedisJobStore({ url: server.url, keyPrefix, partitions: 4, logger: new RecordingLogger() });
    await store.init();
    stores.push(store);
    for (let i = 0; i < 5; i++) await store.createJob(newJob(), { now: Date.now(), maximumQueueSize: 100 });
    const result = await cli(['stats', '--json', '--redis-url', server.url, '--key-prefix', keyPrefix]);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(result.stdout)).toMatchObject({ waiting: 5, counts: { Queued: 5 } });

    const unused = `{cli-typo-${randomUUID()}}`;
    for (let run = 0; run < 2; run++) {
      const typo = await cli(['stats', '--json', '--redis-url', server.url, '--key-prefix', unused]);
      expect(typo.stderr).toContain(`Warning: nothing is stored under the key prefix '${unused}'`);
    }
  });
});

describe('passwords in --redis-url', () => {
  it('are masked in the user:password@ and ?password= forms, in connection errors and usage errors', async () => {
    const port = await freePort();
    const [query, userInfo, notRedis, noScheme] = await Promise.all([
      cli(['stats', '--redis-url', `redis://127.0.0.1:${port}/?password=hunter2`]),
      cli(['stats', '--redis-url', `redis://app:hunter2@127.0.0.1:${port}/0`]),
      cli(['stats', '--redis-url', 'http://app:hunter2@cache.internal:6379/?password=hunter2']),
      cli(['stats', '--redis-url', 'app:hunter2@cache.internal:6379']),
    ]);
    expect(query).toMatchObject({ code: 1, stdout: '' });
    expect(query.stderr).toMatch(
      `Error: Cannot connect to Redis at redis://127.0.0.1:${port}/?password=***: connect ECONNREFUSED`,
    );
    expect(userInfo.stderr).toMatch(
      `Error: Cannot connect to Redis at redis://app:***@127.0.0.1:${port}/0: connect ECONNREFUSED`,
    );
    expect(notRedis).toMatchObject({ code: 2, stdout: '' });
    expect(notRedis.stderr).toMatch(
      "Error: --redis-url 'http://app:***@cache.internal:6379/?password=***' must start with redis:// or rediss://",
    );
    expect(noScheme.stderr).toMatch(
      "Error: --redis-url 'app:***@cache.internal:6379' must start with redis:// or rediss://",
    );
    for (const run of [query, userInfo, notRedis, noScheme]) expect(run.stderr).not.toContain('hunter2');
  });
});

describe('control characters in stored text', () => {
  // Text a handler's error or a job's name could carry: colours, a screen clear, a window title, a
  // carriage return and a newline that forge a line, an 8-bit CSI and a bidi override.
  const hostile = 'red\u001b[31m clear\u001b[2J title\u001b]0;pwned\u0007 cr\rforged\nline csi\u009b31m rtl\u202e';
  const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

  it('are printed escaped by list, cancel and retry, and kept intact in --json output', async () => {
    const { store, create, claimOne, run } = await freshStore();
    const id = await create(Date.now(), { name: `Evil${hostile}` });
    // The Redis store claims only the names asked for.
    const { lease } = await claimOne(Date.now(), 30_000, [`Evil${hostile}`]);
    await store.failJob(
      lease,
      { code: 'BAD\u001b[0m', message: hostile },
      { now: Date.now(), retryAt: null, retention },
    );
    const queued = await create(Date.now(), { name: `Evil${hostile}` });

    const table = await run(['list', '--status', 'Failed']);
    expect(table).toMatchObject({ code: 0, stderr: '' });
    expect(table.stdout).not.toMatch(RAW_CONTROL);
    const lines = table.stdout.trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[1]).toContain(
      'Evilred\\u001b[31m clear\\u001b[2J title\\u001b]0;pwned\\u0007 cr\\rforged\\nline csi\\u009b31m rtl\\u202e',
    );
    expect(lines[1]).toContain('BAD\\u001b[0m: red\\u001b[31m');

    const json = await run(['list', '--status', 'Failed', '--json']);
    expect(json.stdout).not.toMatch(RAW_CONTROL);
    expect(JSON.parse(json.stdout)).toMatchObject([
      { id, name: `Evil${hostile}`, error: { code: 'BAD\u001b[0m', message: hostile } },
    ]);

    const canceled = await run(['cancel', queued]);
    expect(canceled).toMatchObject({ code: 0, stderr: '' });
    expect(canceled.stdout).not.toMatch(RAW_CONTROL);
    expect(canceled.stdout.trim().split('\n')).toHaveLength(1);
    const retried = await run(['retry', id]);
    expect(retried.stdout).toMatch(/^Job \S+ \(Evilred\\u001b\[31m clear.* is Queued again/);
    expect(retried.stdout.trim().split('\n')).toHaveLength(1);
  });
});
