import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import { JobStatus } from '../../lib/job/index.js';
import type { ClaimedJob, Retention } from '../../lib/store/job-store.js';
import { RedisJobStore } from '../../lib/store/redis/redis-job-store.js';
import { StoreKeys } from '../../lib/store/redis/redis-keys.js';
import { newJob } from '../store-conformance/job-store.conformance.js';
import { runCliInProcess, runCliProcess, type CliRun } from '../support/cli-process.js';
import { CompiledProcesses } from '../support/node-processes.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { RedisCluster } from '../support/redis-cluster.js';
import { freePort, RedisServer } from '../support/redis-server.js';

// The operator CLI over --cluster-nodes, against a real Redis Cluster of 3 masters and 3 replicas and
// a store made through RedisJobStore on it with the Cluster's default 12 partitions (4 per master):
// every command but migrate reads and changes jobs on every master. One Cluster for the file; the
// tests that change jobs come last.

const DAY = 86_400_000;
const PARTITIONS = 12;
const retention: Retention = { completedTtlMs: 30 * DAY, failedTtlMs: 30 * DAY };
const keyPrefix = `{cli-cluster-${randomUUID()}}`;
const keys = new StoreKeys(keyPrefix, PARTITIONS);

let cluster: RedisCluster;
let store: RedisJobStore;
/** The port of the master that holds partition k, at index k. */
let masterOf: number[];
/** The jobs made in beforeAll, by what became of them. */
const made = { queued: [] as string[], failed: [] as string[], completed: [] as string[], running: [] as string[] };

beforeAll(async () => {
  cluster = await RedisCluster.start();
  store = new RedisJobStore({ cluster: { nodes: cluster.nodes }, keyPrefix, logger: new RecordingLogger() });
  await store.init();
  masterOf = await mastersOfPartitions();
  const past = Date.now() - 2 * DAY;
  // In every partition a Queued Process job; in the even ones a Failed Flaky job, in the odd ones a
  // Report job completed two days ago; in 3 of them an Export job running on a live worker.
  for (let k = 0; k < PARTITIONS; k++) {
    made.queued.push(await create(k, 'Process'));
    if (k % 2 === 0) made.failed.push(await create(k, 'Flaky'));
    else made.completed.push(await create(k, 'Report', past));
    if (k % 4 === 1) made.running.push(await create(k, 'Export'));
  }
  for (const { lease } of await claimAll('Flaky', made.failed.length)) {
    await store.failJob(
      lease,
      { code: 'DOWNSTREAM_DOWN', message: 'no' },
      { now: Date.now(), retryAt: null, retention },
    );
  }
  for (const { lease } of await claimAll('Report', made.completed.length, past)) {
    await store.completeJob(lease, { ok: true }, { now: past, retention });
  }
  await claimAll('Export', made.running.length);
  await store.registerWorker({ workerId: 'worker-7', names: ['Export'] }, { now: Date.now(), ttlMs: 10 * 60_000 });
}, 60_000);

afterAll(async () => {
  await store?.close();
  await cluster?.stop();
});

/** A job of `name` with an id of partition k. */
async function create(k: number, name: string, now = Date.now()): Promise<string> {
  let id = randomUUID();
  while (keys.partitionIndexOf(id) !== k) id = randomUUID();
  await store.createJob(newJob({ id, name }), { now, maximumQueueSize: 1000 });
  return id;
}

/** Claims `count` jobs of `name`, call after call (a claim may answer from some partitions only). */
async function claimAll(name: string, count: number, now = Date.now()): Promise<ClaimedJob[]> {
  const claimed: ClaimedJob[] = [];
  for (let call = 0; claimed.length < count && call < 50; call++) {
    claimed.push(
      ...(await store.claimDueJobs({
        workerId: 'worker-7',
        names: [name],
        limit: count - claimed.length,
        leaseMs: 10 * 60_000,
        now,
        maxConcurrentJobs: null,
      })),
    );
  }
  expect(claimed).toHaveLength(count);
  return claimed;
}

/** The port of the master that holds each partition's slot, as the Cluster tells it. */
async function mastersOfPartitions(): Promise<number[]> {
  const [live] = await cluster.masters();
  const ranges = (await cluster.command(live!.port, ['cluster', 'slots'])) as [number, number, [string, number]][];
  return Promise.all(
    keys.partitions.map(async (partition) => {
      const slot = (await cluster.command(live!.port, ['cluster', 'keyslot', partition.sequence])) as number;
      return ranges.find(([from, to]) => slot >= from && slot <= to)![2][1];
    }),
  );
}

/** Runs the CLI in this process over --cluster-nodes, on the store's key prefix. */
function cli(args: readonly string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runCliInProcess([...args, '--cluster-nodes', cluster.nodes.join(','), '--key-prefix', keyPrefix], env);
}

/** One job of `ids` in a partition of each master: three jobs, on three masters. */
function onePerMaster(ids: readonly string[]): string[] {
  const byMaster = new Map<number, string>();
  for (const id of ids) {
    const port = masterOf[keys.partitionIndexOf(id)]!;
    if (!byMaster.has(port)) byMaster.set(port, id);
  }
  expect(byMaster.size).toBe(3);
  return [...byMaster.values()];
}

describe('the store of this file', () => {
  it('spreads its 12 partitions over the 3 masters, 4 each, with jobs in every partition', () => {
    const perMaster = new Map<number, number>();
    for (const port of masterOf) perMaster.set(port, (perMaster.get(port) ?? 0) + 1);
    expect([...perMaster.values()]).toEqual([4, 4, 4]);
    expect(new Set(made.queued.map((id) => keys.partitionIndexOf(id))).size).toBe(PARTITIONS);
  });
});

describe('stats over --cluster-nodes', () => {
  it('counts the jobs of every partition on every master, per status and per name, as JSON and as a table', async () => {
    const json = await cli(['stats', '--json']);
    expect({ code: json.code, stderr: json.stderr }).toEqual({ code: 0, stderr: '' });
    const stats = JSON.parse(json.stdout) as { counts: Record<string, number>; names: Record<string, unknown> };
    expect(stats).toMatchObject({
      counts: { Queued: 12, Scheduled: 0, InProgress: 3, Completed: 6, Failed: 6, Canceled: 0 },
      waiting: 12,
      inProgress: 3,
    });
    // Per name: the names with live jobs (Flaky's and Report's are finished).
    expect(stats.names).toEqual({
      Process: { waiting: 12, inProgress: 0, oldestWaitingAgeMs: expect.any(Number), workers: 0 },
      Export: { waiting: 0, inProgress: 3, oldestWaitingAgeMs: null, workers: 1 },
    });

    const table = await cli(['stats']);
    expect(table).toMatchObject({ code: 0, stderr: '' });
    expect(table.stdout).toMatch(
      /^STATUS\s+JOBS\nQueued\s+12\nScheduled\s+0\nInProgress\s+3\nCompleted\s+6\nFailed\s+6\nCanceled\s+0\n/,
    );
    expect(table.stdout).toMatch(/\nExport\s+0\s+3\s+none due\s+1\n/);
    expect(table.stdout).toMatch(/\nProcess\s+12\s+0\s+due \S+ ago\s+0 \(no worker runs it\)\n/);
  });

  it('takes the seed nodes from REDIS_CLUSTER_NODES, one of them enough, spaces around the commas allowed', async () => {
    const [first] = cluster.nodes;
    const runs = await Promise.all([
      runCliInProcess(['stats', '--json', '--key-prefix', keyPrefix], {
        REDIS_CLUSTER_NODES: cluster.nodes.join(' , '),
      }),
      runCliInProcess(['stats', '--json', '--key-prefix', keyPrefix, '--cluster-nodes', first!]),
    ]);
    for (const run of runs) {
      expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
      expect(JSON.parse(run.stdout)).toMatchObject({ counts: { Queued: 12, Completed: 6, Failed: 6 } });
    }
  });

  it('warns, naming the Cluster, under a key prefix with nothing stored, and records nothing there: an app with 4 partitions starts on it after', async () => {
    const unused = `{cli-cluster-typo-${randomUUID()}}`;
    const run = await runCliInProcess([
      'stats',
      '--json',
      '--key-prefix',
      unused,
      '--cluster-nodes',
      cluster.nodes.join(','),
    ]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ waiting: 0, counts: { Completed: 0 } });
    expect(run.stderr).toBe(
      `Warning: nothing is stored under the key prefix '${unused}' on the Redis Cluster at ${cluster.nodes.join(',')}: ` +
        "no job was ever stored there. If that is unexpected, check --key-prefix: it must be the app's store.keyPrefix (default {async-endpoints}).\n",
    );
    // The partition count is the first app's to choose, not the CLI's (12 on a Cluster by default).
    const reader = new Cluster(
      cluster.nodes.map((node) => ({ host: node.split(':')[0]!, port: Number(node.split(':')[1]) })),
    );
    try {
      expect(await reader.exists(new StoreKeys(unused).meta)).toBe(0);
    } finally {
      reader.disconnect();
    }
    const app = new RedisJobStore({
      cluster: { nodes: cluster.nodes },
      keyPrefix: unused,
      partitions: 4,
      logger: new RecordingLogger(),
    });
    try {
      await expect(app.init()).resolves.toBeUndefined();
    } finally {
      await app.close();
    }
  });
});

describe('--redis-url on a node of the Cluster', () => {
  it('fails on the keys of other nodes (MOVED) and says to pass --cluster-nodes', async () => {
    const [live] = await cluster.masters();
    const metaSlot = (await cluster.command(live!.port, ['cluster', 'keyslot', keys.meta])) as number;
    const ranges = (await cluster.command(live!.port, ['cluster', 'slots'])) as [number, number, [string, number]][];
    const other = ranges.find(([from, to]) => metaSlot < from || metaSlot > to)![2][1];
    const run = await runCliInProcess([
      'stats',
      '--redis-url',
      `redis://127.0.0.1:${other}`,
      '--key-prefix',
      keyPrefix,
    ]);
    expect({ code: run.code, stdout: run.stdout }).toEqual({ code: 1, stdout: '' });
    expect(run.stderr).toMatch(
      /^Error: MOVED \d+ 127\.0\.0\.1:\d+ \(this Redis is a node of a Redis Cluster: pass the Cluster's nodes with --cluster-nodes host:port,\.\.\. instead of --redis-url\)\n$/,
    );
  });
});

describe('--cluster-nodes naming a Redis that is not a Cluster node', () => {
  it('fails, naming the node, and says to pass --redis-url', async () => {
    const single = await RedisServer.start();
    try {
      const run = await runCliInProcess(['stats', '--cluster-nodes', `127.0.0.1:${single.port}`]);
      expect({ code: run.code, stdout: run.stdout }).toEqual({ code: 1, stdout: '' });
      expect(run.stderr).toContain(`127.0.0.1:${single.port}: ERR This instance has cluster support disabled`);
      expect(run.stderr).toContain(
        '(that Redis is not a Cluster node: pass --redis-url redis://host:port for one Redis)',
      );
    } finally {
      await single.dispose();
    }
  });
});

describe('list over --cluster-nodes', () => {
  it('lists the jobs of one status from every partition, newest first, within --limit', async () => {
    const all = await cli(['list', '--status', 'Queued', '--limit', '50']);
    expect(all).toMatchObject({ code: 0, stderr: '' });
    const lines = all.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+NAME\s+RETRIES\s+CREATED\s+LAST UPDATE\s+ERROR$/);
    expect(
      lines
        .slice(1, -2)
        .map((line) => line.split(/\s+/)[0])
        .sort(),
    ).toEqual([...made.queued].sort());
    expect(lines.at(-1)).toBe('12 Queued job(s), newest first.');

    const limited = await cli(['list', '--status', 'queued', '--limit', '5']);
    expect(limited.stdout.trim().split('\n').at(-1)).toBe('5 of 12 Queued jobs (--limit 5), newest first.');

    const failed = await cli(['list', '--status', 'Failed', '--json']);
    const documents = JSON.parse(failed.stdout) as { id: string; name: string; error: { code: string } }[];
    expect(documents.map((job) => job.id).sort()).toEqual([...made.failed].sort());
    expect(documents.every((job) => job.name === 'Flaky' && job.error.code === 'DOWNSTREAM_DOWN')).toBe(true);

    const byName = await cli(['list', '--status', 'InProgress', '--name', 'Export', '--json']);
    expect((JSON.parse(byName.stdout) as { id: string }[]).map((job) => job.id).sort()).toEqual(
      [...made.running].sort(),
    );
  });
});

describe('purge --dry-run over --cluster-nodes', () => {
  it('lists the old finished jobs of every partition and deletes none', async () => {
    const run = await cli(['purge', '--status', 'Completed', '--older-than', '1d', '--dry-run']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const [summary, ...ids] = run.stdout.trim().split('\n');
    expect(summary).toMatch(/^Would purge 6 Completed job\(s\) finished before \d{4}-\d\d-\d\dT[\d:.]+Z:$/);
    expect(ids.sort()).toEqual([...made.completed].sort());
    for (const id of made.completed) expect((await store.getJob(id))!.status).toBe(JobStatus.Completed);
  });
});

describe('cancel and retry over --cluster-nodes', () => {
  it('cancel and retry jobs by id in partitions on each of the 3 masters', async () => {
    const queued = onePerMaster(made.queued);
    for (const id of queued) {
      expect(await cli(['cancel', id])).toEqual(
        expect.objectContaining({ code: 0, stderr: '', stdout: `Job ${id} (Process) canceled.\n` }),
      );
      expect((await store.getJob(id))!.status).toBe(JobStatus.Canceled);
    }
    for (const id of [...queued, ...onePerMaster(made.failed)]) {
      const run = await cli(['retry', id]);
      expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
      expect(run.stdout).toMatch(
        new RegExp(`^Job ${id} \\((Process|Flaky)\\) is Queued again, with up to 4 attempts\\.\\n$`),
      );
      expect(await store.getJob(id)).toMatchObject({ status: JobStatus.Queued, retryCount: 0 });
    }

    const running = made.running[0]!;
    const requested = await cli(['cancel', running]);
    expect(requested).toMatchObject({ code: 0, stderr: '' });
    expect(requested.stdout).toContain(`Job ${running} (Export) is running on worker worker-7: cancellation requested`);
    expect(await store.getJob(running)).toMatchObject({ status: JobStatus.InProgress, cancelRequested: true });

    const unknown = randomUUID();
    expect(await cli(['cancel', unknown])).toMatchObject({
      code: 1,
      stderr: `Error: Job ${unknown} not found (unknown id, or deleted after its retention).\n`,
    });
    const stats = JSON.parse((await cli(['stats', '--json'])).stdout) as { counts: Record<string, number> };
    expect(stats.counts).toMatchObject({ Queued: 15, Failed: 3, Canceled: 0, InProgress: 3 });
  });
});

describe('the command line with --cluster-nodes', () => {
  it('refuses --redis-url with --cluster-nodes, both variables without an option, a bad node list, and migrate, with exit code 2 without touching Redis', async () => {
    const nodes = ['--cluster-nodes', '127.0.0.1:1,127.0.0.1:2'];
    const migrateRefusal =
      'migrate runs against a single Redis (--redis-url), not a Redis Cluster (--cluster-nodes or REDIS_CLUSTER_NODES): ' +
      'it cannot convert or re-partition a store on a Cluster.';
    const cases: [string[], Record<string, string>, string][] = [
      [
        ['stats', '--redis-url', 'redis://127.0.0.1:1', ...nodes],
        {},
        '--redis-url and --cluster-nodes: give one of them (--redis-url for one Redis, --cluster-nodes for a Redis Cluster), not both.',
      ],
      [
        ['stats'],
        { REDIS_URL: 'redis://127.0.0.1:1', REDIS_CLUSTER_NODES: '127.0.0.1:2' },
        'REDIS_URL and REDIS_CLUSTER_NODES are both set: pass --redis-url <url> (one Redis) or --cluster-nodes <host:port,...> (a Redis Cluster) to choose.',
      ],
      [['stats', '--cluster-nodes', ' , '], {}, '--cluster-nodes needs at least one seed node of the Redis Cluster'],
      [
        ['stats', '--cluster-nodes', '127.0.0.1:7000,cache.internal'],
        {},
        "--cluster-nodes: 'cache.internal' is not host:port (port 1-65535), such as 10.0.0.1:7000.",
      ],
      [
        ['stats'],
        { REDIS_CLUSTER_NODES: '127.0.0.1:70000' },
        "REDIS_CLUSTER_NODES: '127.0.0.1:70000' is not host:port",
      ],
      [
        ['stats', '--cluster-nodes', '127.0.0.1:7000,redis://:s3cret@127.0.0.1:7001'],
        {},
        "--cluster-nodes: 'redis://:***@127.0.0.1:7001' is a URL; give host:port, such as 10.0.0.1:7000, and the password in REDIS_PASSWORD.",
      ],
      [['migrate', '--dry-run', ...nodes], {}, migrateRefusal],
      [['migrate', '--yes', '--partitions', '12'], { REDIS_CLUSTER_NODES: '127.0.0.1:1' }, migrateRefusal],
    ];
    const runs = await Promise.all(cases.map(([args, env]) => runCliInProcess(args, env)));
    cases.forEach(([args, , message], i) => {
      const run = runs[i]!;
      expect({ args, code: run.code, stdout: run.stdout }).toEqual({ args, code: 2, stdout: '' });
      expect(run.stderr.split('\n')[0]).toMatch(`Error: ${message}`);
      expect(run.stderr).toContain('Usage: nestjs-async-endpoints <command> [options]');
    });
    expect(runs.map((run) => run.stderr).join('')).not.toContain('s3cret');
    expect(runs.at(-1)!.stderr).toContain(
      'run migrate there with --redis-url. A store on a Cluster keeps the partition count it was first started with',
    );
    // An option wins over the other variable.
    const url = await runCliInProcess(['stats', '--redis-url', 'redis://127.0.0.1:1'], { REDIS_CLUSTER_NODES: 'x:1' });
    expect(url.stderr).toMatch(/^Error: Cannot connect to Redis at redis:\/\/127.0.0.1:1: /);
  });

  it('exits 1 with one clear line naming the nodes when no node of the Cluster answers, without retrying for long (within 10 s, spawn included)', async () => {
    // Compiled by the first file that needs it: seconds on a busy machine, within this case's timeout.
    const compiled = await CompiledProcesses.compile();
    const ports = [await freePort(), await freePort()];
    const nodes = ports.map((port) => `127.0.0.1:${port}`).join(',');
    const run = await runCliProcess(join(compiled.outDir, 'lib', 'cli', 'main.js'), ['stats'], {
      REDIS_CLUSTER_NODES: nodes,
    });
    expect({ code: run.code, stdout: run.stdout }).toEqual({ code: 1, stdout: '' });
    expect(run.stderr.trim().split('\n')).toEqual([
      `Error: Cannot connect to the Redis Cluster at ${nodes}: no seed node answered with the slot map ` +
        `(127.0.0.1:${ports[0]}: connect ECONNREFUSED 127.0.0.1:${ports[0]}; 127.0.0.1:${ports[1]}: connect ECONNREFUSED 127.0.0.1:${ports[1]})`,
    ]);
    // The CLI waits 3 s for the Cluster; ioredis alone would retry for as long as it is let.
    expect(run.ms).toBeLessThan(10_000);
  }, 60_000);
});

describe('a Cluster with a password', () => {
  // Last: the nodes keep the password until the Cluster stops. The file's store, which has none, is
  // closed first.
  it('takes it from REDIS_PASSWORD for every node, and says where it goes when it is missing', async () => {
    await store.close();
    for (const node of await cluster.topology()) {
      await cluster.command(node.port, ['config', 'set', 'masterauth', 'pa55word']);
      await cluster.command(node.port, ['config', 'set', 'requirepass', 'pa55word']);
    }
    const [given, missing] = await Promise.all([
      cli(['stats', '--json'], { REDIS_PASSWORD: 'pa55word' }),
      cli(['stats']),
    ]);
    expect({ code: given.code, stderr: given.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(given.stdout)).toMatchObject({ counts: { Queued: 15, InProgress: 3, Completed: 6, Failed: 3 } });
    expect({ code: missing.code, stdout: missing.stdout }).toEqual({ code: 1, stdout: '' });
    expect(missing.stderr).toMatch(
      `Error: Cannot connect to the Redis Cluster at ${cluster.nodes.join(',')}: no seed node answered with the slot map (127.0.0.1:`,
    );
    expect(missing.stderr).toContain(': NOAUTH Authentication required.');
    expect(missing.stderr.trim().endsWith(') (give the password in REDIS_PASSWORD)')).toBe(true);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
  });
});
