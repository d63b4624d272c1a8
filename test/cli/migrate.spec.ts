import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { JOB_STATUSES, type JobStatus } from '../../lib/job/index.js';
import { migrateLayout } from '../../lib/store/redis/migrate/layout-migration.js';
import { layoutV1Keys, StoreKeys } from '../../lib/store/redis/redis-keys.js';
import { encodeRegistration } from '../../lib/store/redis/redis-reads.js';
import { FIXTURE_IDS as ID, loadFixture, readFixture, type FixtureKey } from '../fixtures/redis-0.1.0/fixture-file.js';
import { runCliInProcess as cli, runCliProcess } from '../support/cli-process.js';
import { CompiledProcesses } from '../support/node-processes.js';
import { RedisServer } from '../support/redis-server.js';

// `nestjs-async-endpoints migrate` on real 0.1.0 data: test/fixtures/redis-0.1.0/store.json, seven
// jobs of two names in every status, written by 0.1.0's RedisJobStore and dumped (keys, values, TTLs)
// by make-fixture.ts at commit 0ad6157, when lib/store/redis was still 0.1.0's. Each test
// loads it under a key prefix of its own on one redis-server, and runs the CLI: the compiled command in
// its own process once, as users do, and its entry point in this process otherwise (faster).

const fixture = readFixture(new URL('../fixtures/redis-0.1.0/store.json', import.meta.url));
const T = fixture.madeAt;
/** When each live fixture job entered its status (make-fixture.ts): layout 2's status index scores. */
const ENTERED_STATUS_AT: Record<string, number> = {
  [ID.queuedResize]: T - 10_000,
  [ID.queuedTranscode]: T - 5_000,
  [ID.scheduled]: T - 28_000,
  [ID.inProgress]: T - 19_000,
};
/** The fixture's keys by name, with its own prefix cut off (`:job:<id>`, `:waiting`, ...). */
const v1 = new Map<string, FixtureKey>(fixture.keys.map((entry) => [entry.key.slice(fixture.keyPrefix.length), entry]));
const v1Hash = (suffix: string) => v1.get(suffix)!.value as Record<string, string>;
const v1Score = (suffix: string, member: string) =>
  (v1.get(suffix)!.value as [string, number][]).find(([candidate]) => candidate === member)?.[1];

let compiled: CompiledProcesses;
let server: RedisServer;
let redis: Redis;
let cliPath: string;

beforeAll(async () => {
  compiled = await CompiledProcesses.compile();
  cliPath = join(compiled.outDir, 'lib', 'cli', 'main.js');
  server = await RedisServer.start();
  redis = new Redis(server.url);
});

afterAll(async () => {
  redis?.disconnect();
  await server?.dispose();
});

/**
 * The fixture under a fresh key prefix, and the CLI's migrate on it: through the CLI's entry point in
 * this process (`migrate`), or as the compiled command in its own process (`migrateProcess`).
 */
async function loaded(tag = `mig-${randomUUID()}`) {
  const keyPrefix = `{${tag}}`;
  await loadFixture(redis, fixture, keyPrefix);
  const args = (more: string[]) => ['migrate', '--redis-url', server.url, '--key-prefix', keyPrefix, ...more];
  const migrate = (...more: string[]) => cli(args(more));
  const migrateProcess = (...more: string[]) => runCliProcess(cliPath, args(more));
  return { keyPrefix, migrate, migrateProcess, contents: () => contents(tag) };
}

/**
 * A fresh tag under which a fixture job has the same partition prefix with `a` and with `b`
 * partitions (so it stays when the store moves between them); any fresh tag when none can (1 and more).
 */
function tagSharingAPartition(a: number, b: number): string {
  for (let i = 0; i < 1000; i++) {
    const tag = `mig-${randomUUID()}`;
    const [from, to] = [new StoreKeys(`{${tag}}`, a), new StoreKeys(`{${tag}}`, b)];
    if (Object.values(ID).some((id) => from.partitionOf(id).prefix === to.partitionOf(id).prefix)) return tag;
  }
  return `mig-${randomUUID()}`;
}

/** Every key of the store and of its partitions (their tags start with the store's), with its value. */
async function contents(tag: string): Promise<Record<string, unknown>> {
  const keys = (await redis.keys(`{${tag}*`)).sort();
  const values: Record<string, unknown> = {};
  for (const key of keys) {
    const type = await redis.type(key);
    values[key] =
      type === 'hash'
        ? await redis.hgetall(key)
        : type === 'zset'
          ? await redis.zrange(key, '0', '-1', 'WITHSCORES')
          : type === 'set'
            ? (await redis.smembers(key)).sort()
            : await redis.get(key);
  }
  return values;
}

/**
 * Asserts that the store under `keyPrefix` holds the fixture in layout 2 with `partitions`
 * partitions, as the store of this version reads it: each job's hash (same fields, TTL kept) in its
 * partition, its status index entry (live: when it entered the status; terminal: the end of its
 * retention, as before), its waiting or lease entry under its name, its name in the names set, the
 * idempotency key where a submission looks it up; no 0.1.0 key left; meta last.
 */
async function expectLayout2(keyPrefix: string, partitions: number): Promise<void> {
  const store = new StoreKeys(keyPrefix, partitions);
  for (const id of Object.values(ID)) {
    const fields = v1Hash(`:job:${id}`);
    const status = fields.status as JobStatus;
    const keys = store.partitionOf(id);
    expect(await redis.hgetall(keys.job(id))).toEqual(fields);
    const pttl = await redis.pttl(keys.job(id));
    const fixturePttl = v1.get(`:job:${id}`)!.pttl;
    if (fixturePttl === -1) expect(pttl).toBe(-1);
    // Counted from the load; a few seconds go by on a loaded machine.
    else
      expect({ id, pttl, within: pttl > fixturePttl - 60_000 && pttl <= fixturePttl }).toEqual({
        id,
        pttl,
        within: true,
      });
    const live = !['Completed', 'Failed', 'Canceled'].includes(status);
    const statusScore = live ? ENTERED_STATUS_AT[id] : v1Score(`:status:${status}`, id);
    expect({ id, score: Number(await redis.zscore(keys.statusIndex[status], id)) }).toEqual({ id, score: statusScore });
    for (const other of JOB_STATUSES.filter((candidate) => candidate !== status)) {
      expect(await redis.zscore(keys.statusIndex[other], id)).toBeNull();
    }
    if (status === 'Queued' || status === 'Scheduled') {
      const entry = `${fields.seq!.padStart(16, '0')}:${id}`;
      expect(Number(await redis.zscore(keys.waiting(fields.name!), entry))).toBe(v1Score(':waiting', entry));
    }
    if (status === 'InProgress') {
      expect(Number(await redis.zscore(keys.leases(fields.name!), id))).toBe(v1Score(':leases', id));
      expect(Number(await redis.zscore(keys.started, id))).toBe(v1Score(':started', id));
    }
    if (live) expect(await redis.sismember(keys.names, fields.name!)).toBe(1);
  }
  const digest = v1Hash(`:job:${ID.completed}`).idempotencyDigest!;
  for (const keys of [store.partitionOf(ID.completed), store.partitionOf(digest)]) {
    expect(await redis.hget(keys.idempotency, digest)).toBe(ID.completed);
    expect(Number(await redis.zscore(keys.idempotencyExpiries, digest))).toBe(v1Score(':idempotency-expiries', digest));
  }
  const left = partitions === 1 ? [`${keyPrefix}:waiting`, `${keyPrefix}:leases`] : layoutV1Keys(keyPrefix);
  expect(await redis.exists(...left)).toBe(0);
  if (partitions > 1) expect(await redis.keys(`${keyPrefix}:job:*`)).toEqual([]);
  expect(await redis.hgetall(store.meta)).toEqual({ layout: '2', partitions: String(partitions) });
  expect(await redis.exists(`${keyPrefix}:migrating`)).toBe(0);
}

describe('migrate', () => {
  it('with --dry-run prints the 0.1.0 jobs per status and what it would do, exits 0 and changes nothing', async () => {
    const { migrate, contents } = await loaded();
    const before = await contents();
    const run = await migrate('--dry-run');
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(
      /STATUS\s+JOBS\nQueued\s+2\nScheduled\s+1\nInProgress\s+1\nCompleted\s+1\nFailed\s+1\nCanceled\s+1\nIdempotency keys: 1\n/,
    );
    expect(run.stdout).toContain('Would convert it to layout 2 with 1 partition (in place)');
    expect(await contents()).toEqual(before);
  });

  it('without --yes prints the same, changes nothing and exits 1 saying how to confirm', async () => {
    const { migrate, contents } = await loaded();
    const before = await contents();
    const run = await migrate('--partitions', '4');
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('Would convert it to layout 2 with 4 partitions (moving each job to its partition)');
    expect(run.stderr.trim()).toBe(
      'Error: Nothing was changed: migrate changes data only with --yes. Stop every 0.1.0 process on this store, then run the same command with --yes.',
    );
    expect(await contents()).toEqual(before);
  });

  it('with --yes converts in place to layout 2 with 1 partition, prints the jobs per status, and a second run finds nothing to do', async () => {
    const { keyPrefix, migrateProcess: migrate, contents } = await loaded();
    const run = await migrate('--yes');
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(
      /to layout 2 with 1 partition \(in place\):\nSTATUS\s+JOBS\nQueued\s+2\nScheduled\s+1\nInProgress\s+1\nCompleted\s+1\nFailed\s+1\nCanceled\s+1\n/,
    );
    expect(run.stdout).toContain('Start this version with store.partitions 1');
    await expectLayout2(keyPrefix, 1);

    const after = await contents();
    const again = await migrate('--yes');
    expect(again).toMatchObject({ code: 0, stderr: '' });
    expect(again.stdout.trim()).toBe(
      `Nothing to migrate: the store under '${keyPrefix}' at ${server.url} is already in layout 2 with 1 partition.`,
    );
    expect(await contents()).toEqual(after);
  });

  it('with --partitions 4 moves every job to its partition with its TTL, indexes and idempotency key; a second run finds nothing to do', async () => {
    const { keyPrefix, migrate, contents } = await loaded();
    const run = await migrate('--partitions', '4', '--yes');
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toContain('Idempotency keys moved: 1');
    await expectLayout2(keyPrefix, 4);
    // The fixture's jobs do spread (else this test would not show the move).
    const store = new StoreKeys(keyPrefix, 4);
    expect(new Set(Object.values(ID).map((id) => store.partitionIndexOf(id))).size).toBeGreaterThan(1);

    const after = await contents();
    const again = await migrate('--partitions', '4', '--yes');
    expect(again.stdout).toContain('Nothing to migrate');
    expect(await contents()).toEqual(after);
  });

  it.each([1, 4])(
    'cut short before any one of its writes (%i partition(s)): no meta before the data is whole, and a second run ends as one run does',
    async (partitions) => {
      for (let failAt = 1; ; failAt++) {
        const keyPrefix = `{mig-${randomUUID()}}`;
        await loadFixture(redis, fixture, keyPrefix);
        const interrupted = failingAtWrite(redis, failAt);
        const cutShort = await migrateLayout(interrupted.client, keyPrefix, partitions).then(
          () => false,
          (error: Error) => error.message === 'interrupted',
        );
        if (!cutShort) {
          // Every write has been cut short once.
          expect(failAt).toBeGreaterThan(3);
          break;
        }
        // No meta, so no store starts on it; or cut at its very end, after the meta, before its marker went.
        if (await redis.exists(`${keyPrefix}:meta`)) expect(await redis.exists(`${keyPrefix}:migrating`)).toBe(1);
        await migrateLayout(redis, keyPrefix, partitions);
        await expectLayout2(keyPrefix, partitions);
      }
    },
  );

  it.each([
    [1, 4],
    [4, 1],
    [4, 2],
  ])(
    'moves a migrated store from %i to %i partitions, every job with its TTL, indexes and idempotency key',
    async (first, second) => {
      // A tag whose partitions with both counts share a prefix holding a fixture job (it stays), where there is one.
      const { keyPrefix, migrate } = await loaded(tagSharingAPartition(first, second));
      expect((await migrate('--partitions', String(first), '--yes')).code).toBe(0);
      const run = await migrate('--partitions', String(second), '--yes');
      expect(run).toMatchObject({ code: 0, stderr: '' });
      expect(run.stdout).toContain(
        `from layout 2 with ${first} partition${first === 1 ? '' : 's'} to layout 2 with ${second} partition${second === 1 ? '' : 's'} (moving each job whose partition changes):`,
      );
      expect(run.stdout).toMatch(
        /Queued\s+2\nScheduled\s+1\nInProgress\s+1\nCompleted\s+1\nFailed\s+1\nCanceled\s+1\n/,
      );
      await expectLayout2(keyPrefix, second);
      // Nothing is left in the partitions of the first count that are not partitions of the second.
      const kept = new Set(new StoreKeys(keyPrefix, second).partitions.map((keys) => keys.prefix));
      for (const keys of new StoreKeys(keyPrefix, first).partitions.filter((keys) => !kept.has(keys.prefix))) {
        const left = await redis.keys(`${keys.prefix.replace(/[{}]/g, '\\$&')}:*`);
        // With one partition, its prefix is the store's, where the store-wide meta lives.
        expect(left.filter((key) => key !== `${keyPrefix}:meta`)).toEqual([]);
      }
    },
  );

  it.each([
    [1, 4],
    [4, 1],
  ])(
    'moving from %i to %i partitions, cut short before any one of its writes, ends as one run does when run again',
    async (first, second) => {
      for (let failAt = 1; ; failAt++) {
        const keyPrefix = `{mig-${randomUUID()}}`;
        await loadFixture(redis, fixture, keyPrefix);
        await migrateLayout(redis, keyPrefix, first);
        const from = { layout: '2' as const, partitions: first };
        const cutShort = await migrateLayout(failingAtWrite(redis, failAt).client, keyPrefix, second, from).then(
          () => false,
          (error: Error) => error.message === 'interrupted',
        );
        if (!cutShort) break;
        await migrateLayout(redis, keyPrefix, second, from);
        await expectLayout2(keyPrefix, second);
      }
    },
  );

  it('refuses to finish a run cut short with another partition count, and finishes it with the same', async () => {
    const keyPrefix = `{mig-${randomUUID()}}`;
    await loadFixture(redis, fixture, keyPrefix);
    // Cut short after the first partition writes: some jobs are in their partitions already.
    await expect(migrateLayout(failingAtWrite(redis, 8).client, keyPrefix, 4)).rejects.toThrow('interrupted');
    const store = new StoreKeys(keyPrefix, 4);
    const moved = await Promise.all(Object.values(ID).map((id) => redis.exists(store.job(id))));
    expect(moved).toContain(1);

    await expect(migrateLayout(redis, keyPrefix, 1)).rejects.toThrow(
      `A migration of the store under key prefix '${keyPrefix}' to 4 partition(s) was cut short, and jobs may already ` +
        'be in those partitions: run migrate again with --partitions 4 to finish it.',
    );
    await migrateLayout(redis, keyPrefix, 4);
    await expectLayout2(keyPrefix, 4);
  });

  it('leaves a job key it cannot read where it is, names it, and moves the others', async () => {
    const { keyPrefix, migrate } = await loaded();
    const [noStatus, notAHash] = [randomUUID(), randomUUID()];
    await redis.hset(`${keyPrefix}:job:${noStatus}`, 'id', noStatus, 'name', 'Resize');
    await redis.zadd(`${keyPrefix}:status:Queued`, 99, noStatus);
    await redis.set(`${keyPrefix}:job:${notAHash}`, 'written by something else');
    await redis.zadd(`${keyPrefix}:status:Failed`, T + 60_000, notAHash);

    const run = await migrate('--partitions', '4', '--yes');
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toContain(`2 jobs could not be converted whole`);
    expect(run.stdout).toContain(`${noStatus}, ${notAHash}`);
    expect(await redis.hgetall(`${keyPrefix}:job:${noStatus}`)).toEqual({ id: noStatus, name: 'Resize' });
    expect(await redis.get(`${keyPrefix}:job:${notAHash}`)).toBe('written by something else');
    const store = new StoreKeys(keyPrefix, 4);
    for (const id of Object.values(ID)) expect(await redis.exists(store.job(id))).toBe(1);
  });

  it('refuses while a 0.1.0 lease has not expired, naming it and --force, and converts with --force', async () => {
    const { keyPrefix, migrate, contents } = await loaded();
    await redis.zadd(`${keyPrefix}:leases`, Date.now() + 60_000, ID.inProgress);
    const before = await contents();
    const refused = await migrate('--yes');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      'Error: Nothing was changed: 1 job holds a 0.1.0 lease that has not expired: a 0.1.0 worker may be running it. Stop every 0.1.0 process first',
    );
    expect(await contents()).toEqual(before);
    const dryRun = await migrate('--dry-run');
    expect(dryRun.code).toBe(0);
    expect(dryRun.stdout).toContain('With --yes it would refuse now: 1 job holds a 0.1.0 lease');

    const forced = await migrate('--yes', '--force');
    expect(forced.code).toBe(0);
    expect(await redis.hgetall(`${keyPrefix}:meta`)).toEqual({ layout: '2', partitions: '1' });
  });

  it('before moving a store between partition counts, shows its jobs and refuses while a lease has not expired', async () => {
    const { keyPrefix, migrate, contents } = await loaded();
    expect((await migrate('--yes')).code).toBe(0);
    await redis.zadd(new StoreKeys(keyPrefix).partitions[0]!.leases('Transcode'), Date.now() + 60_000, ID.inProgress);
    const before = await contents();
    const plan = await migrate('--partitions', '4', '--dry-run');
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(
      /^The store under '.*' at [^,]*, in layout 2 with 1 partition:\nSTATUS\s+JOBS\nQueued\s+2\nScheduled\s+1\nInProgress\s+1\nCompleted\s+1\nFailed\s+1\nCanceled\s+1\nIdempotency keys: 1\n/,
    );
    expect(plan.stdout).toContain(
      'Would convert it to layout 2 with 4 partitions (moving each job whose partition changes), then write',
    );
    const refused = await migrate('--partitions', '4', '--yes');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      'Error: Nothing was changed: 1 job holds a lease that has not expired: a worker may be running it. Stop every process first',
    );
    expect(await contents()).toEqual(before);
  });

  it('refuses while a worker of this version is registered on the prefix', async () => {
    const { keyPrefix, migrate, contents } = await loaded();
    const workers = new StoreKeys(keyPrefix).workers;
    await redis.hset(workers, 'api-7', encodeRegistration(Date.now() + 60_000, ['Resize']));
    await redis.hset(workers, 'gone-1', encodeRegistration(1000, ['Resize']));
    const before = await contents();
    const refused = await migrate('--yes');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      'Error: Nothing was changed: 1 worker of this version is registered on this key prefix (api-7). Stop every process on this store first, or pass --force.',
    );
    expect(await contents()).toEqual(before);
  });

  it('masks the password of the Redis URL in what it prints', async () => {
    const { keyPrefix } = await loaded();
    const url = `redis://:s3cret@127.0.0.1:${server.port}`;
    const run = await cli(['migrate', '--dry-run', '--redis-url', url, '--key-prefix', keyPrefix]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`0.1.0 data under '${keyPrefix}' at redis://:***@127.0.0.1:${server.port}:`);
    expect(run.stdout + run.stderr).not.toContain('s3cret');
  });

  it('with --json prints the plan and what it did as JSON', async () => {
    const { migrate } = await loaded();
    const plan = await migrate('--dry-run', '--json');
    expect(plan.code).toBe(0);
    expect(JSON.parse(plan.stdout)).toEqual({
      dryRun: true,
      from: { layout: '0.1.0' },
      partitions: 1,
      found: { Queued: 2, Scheduled: 1, InProgress: 1, Completed: 1, Failed: 1, Canceled: 1 },
      idempotencyKeys: 1,
      refusal: null,
    });
    const done = await migrate('--yes', '--partitions', '4', '--json');
    expect(done.code).toBe(0);
    expect(JSON.parse(done.stdout)).toEqual({
      migrated: true,
      from: { layout: '0.1.0' },
      partitions: 4,
      counts: { Queued: 2, Scheduled: 1, InProgress: 1, Completed: 1, Failed: 1, Canceled: 1 },
      idempotencyKeys: 1,
      missing: [],
      unreadable: [],
    });
  });

  it('says there is nothing to migrate under a prefix with no data, and writes nothing', async () => {
    const keyPrefix = `{mig-${randomUUID()}}`;
    const run = await cli(['migrate', '--yes', '--redis-url', server.url, '--key-prefix', keyPrefix]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout.trim()).toBe(`Nothing to migrate: no 0.1.0 data under '${keyPrefix}' at ${server.url}.`);
    expect(await redis.keys(`${keyPrefix}*`)).toEqual([]);
  });
});

/**
 * The client, except that its `failAt`-th write (a transaction, DEL, SET or HSET) fails before it
 * reaches Redis: a migration cut short there.
 */
function failingAtWrite(client: Redis, failAt: number): { client: Redis } {
  let writes = 0;
  const failing = () => ++writes === failAt;
  const proxy = new Proxy(client, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (property === 'multi') {
        return () => {
          const transaction = target.multi();
          if (failing()) transaction.exec = () => Promise.reject(new Error('interrupted'));
          return transaction;
        };
      }
      if (property === 'del' || property === 'set' || property === 'hset') {
        return (...args: unknown[]) =>
          failing()
            ? Promise.reject(new Error('interrupted'))
            : (value as (...a: unknown[]) => unknown).apply(target, args);
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { client: proxy };
}
