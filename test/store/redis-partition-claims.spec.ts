import { Redis } from 'ioredis';
import type { ClaimedJob, ClaimOptions } from '../../lib/store/job-store.js';
import { STICKY_CLAIMS } from '../../lib/store/redis/redis-claims.js';
import { RedisJobStore } from '../../lib/store/redis/redis-job-store.js';
import { StoreKeys } from '../../lib/store/redis/redis-keys.js';
import { newJob } from '../store-conformance/job-store.conformance.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { RedisServer } from '../support/redis-server.js';
import { idsInOnePartition } from '../support/test-stores.js';

/**
 * Claims of a store split into partitions (docs/storage.md, Claims): a claim runs the claim script on
 * one marked partition after the other, from a start that stays while it fills claims (STICKY_CLAIMS in
 * a row at most), with what is left of its limit; order holds within a partition, and partitions take turns.
 */
let server: RedisServer;
let prefixes = 0;
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  server = await RedisServer.start();
});

afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

afterAll(async () => {
  await server?.dispose();
});

const claimOptions = (now: number, limit: number): ClaimOptions => ({
  workerId: 'worker-a',
  names: ['Process'],
  limit,
  leaseMs: 30_000,
  now,
  maxConcurrentJobs: null,
});

/**
 * A store on its own client, which records the name of every command it sends and can run `before`
 * once, right before its next claim script goes out.
 */
async function openStore(partitions: number, keyPrefix = `{ae-claims-${++prefixes}}`) {
  const client = new Redis(server.url, { lazyConnect: true });
  const store = new RedisJobStore({ client, keyPrefix, partitions, logger: new RecordingLogger() });
  cleanup.push(
    () => client.quit(),
    () => store.close(),
  );
  await store.init();
  const sent: string[] = [];
  const send = client.sendCommand.bind(client);
  client.sendCommand = (command, stream) => {
    sent.push(command.name);
    return send(command, stream);
  };
  let before: (() => Promise<unknown>) | null = null;
  const claimScript = 'asyncEndpointsClaimJobsV2';
  const runClaim = (client as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[claimScript]!;
  (client as unknown as Record<string, unknown>)[claimScript] = async (...args: unknown[]) => {
    const run = before;
    before = null;
    if (run) await run();
    return runClaim.apply(client, args);
  };
  return {
    store,
    keyPrefix,
    storeKeys: new StoreKeys(keyPrefix, partitions),
    sent,
    beforeNextClaimScript: (action: () => Promise<unknown>) => (before = action),
  };
}

async function createAll(store: RedisJobStore, ids: readonly string[], now: number): Promise<void> {
  for (const id of ids) await store.createJob(newJob({ id }), { now, maximumQueueSize: 1000 });
}

const idsOf = (claimed: ClaimedJob[]) => claimed.map((claim) => claim.job.id);

describe('Redis store with several partitions, claims', () => {
  it('sends one claim script and no reads when the first partition it visits fills the limit', async () => {
    const { store, sent } = await openStore(4);
    const now = Date.now();
    for (let partition = 0; partition < 4; partition++)
      await createAll(store, idsInOnePartition(4, 11, partition), now);
    // The first call of a script on a connection may be an EVAL: one claim first (the next starts where
    // it did, which has 10 left).
    expect(await store.claimDueJobs(claimOptions(now, 1))).toHaveLength(1);
    sent.length = 0;
    expect(await store.claimDueJobs(claimOptions(now, 10))).toHaveLength(10);
    expect(sent).toEqual(['evalsha']);
  });

  it('goes on to the other partitions when a concurrent claim took the jobs of the first: together they claim every due job once', async () => {
    const worker = await openStore(2);
    const other = await openStore(2, worker.keyPrefix);
    const now = Date.now();
    const older = idsInOnePartition(2, 3, 0);
    const newer = idsInOnePartition(2, 3, 1);
    await createAll(worker.store, older, now - 100);
    await createAll(worker.store, newer, now);
    let otherClaimed: ClaimedJob[] = [];
    worker.beforeNextClaimScript(async () => {
      otherClaimed = await other.store.claimDueJobs(claimOptions(now, 3));
    });
    const claimed = await worker.store.claimDueJobs(claimOptions(now, 3));
    expect(otherClaimed).toHaveLength(3);
    expect(claimed).toHaveLength(3);
    expect(new Set([...idsOf(claimed), ...idsOf(otherClaimed)])).toEqual(new Set([...older, ...newer]));
  });

  it(`takes the partitions in turn: a job alone in its partition is claimed within ${STICKY_CLAIMS} claims per backlogged partition (+1), ahead of the older backlogs`, async () => {
    const { store } = await openStore(4);
    const now = Date.now();
    const backlogs = [0, 2, 3].map((partition) => idsInOnePartition(4, 3 * STICKY_CLAIMS, partition));
    for (const backlog of backlogs)
      for (const [i, id] of backlog.entries()) await createAll(store, [id], now - 1000 + i);
    const [alone] = idsInOnePartition(4, 1, 1);
    await createAll(store, [alone!], now);
    const claimed: string[] = [];
    for (let claim = 0; claim < 3 * STICKY_CLAIMS + 1; claim++)
      claimed.push(...idsOf(await store.claimDueJobs(claimOptions(now, 1))));
    expect(claimed).toContain(alone);
    // Within a partition, due-time order holds.
    for (const backlog of backlogs) {
      const fromBacklog = claimed.filter((id) => backlog.includes(id));
      expect(fromBacklog).toEqual(backlog.slice(0, fromBacklog.length));
    }
  });

  it(`starts ${STICKY_CLAIMS} claims in a row at a partition that fills them, then the next partition`, async () => {
    const { store, storeKeys } = await openStore(4);
    const now = Date.now();
    for (let partition = 0; partition < 4; partition++)
      await createAll(store, idsInOnePartition(4, 3 * STICKY_CLAIMS, partition), now);
    const partitions: number[] = [];
    for (let claim = 0; claim < 3 * STICKY_CLAIMS; claim++) {
      const [one] = await store.claimDueJobs(claimOptions(now, 1));
      partitions.push(storeKeys.partitionIndexOf(one!.job.id));
    }
    const first = partitions[0]!;
    const runs = [first, (first + 1) % 4, (first + 2) % 4].flatMap((partition) =>
      Array.from({ length: STICKY_CLAIMS }, () => partition),
    );
    expect(partitions).toEqual(runs);
  });

  it("keeps the start of each set of names apart: another worker's claims do not hold this one on a partition", async () => {
    const { store, storeKeys } = await openStore(4);
    const now = Date.now();
    for (let partition = 0; partition < 4; partition++)
      await createAll(store, idsInOnePartition(4, 3 * STICKY_CLAIMS, partition), now);
    // Another worker, of another name, whose jobs all sit in partition 0.
    const others = idsInOnePartition(4, 3 * STICKY_CLAIMS, 0);
    for (const id of others) await store.createJob(newJob({ id, name: 'Report' }), { now, maximumQueueSize: 1000 });
    const partitions: number[] = [];
    for (let claim = 0; claim < 3 * STICKY_CLAIMS; claim++) {
      const [one] = await store.claimDueJobs(claimOptions(now, 1));
      partitions.push(storeKeys.partitionIndexOf(one!.job.id));
      expect(await store.claimDueJobs({ ...claimOptions(now, 1), names: ['Report'] })).toHaveLength(1);
    }
    const first = partitions[0]!;
    const runs = [first, (first + 1) % 4, (first + 2) % 4].flatMap((partition) =>
      Array.from({ length: STICKY_CLAIMS }, () => partition),
    );
    expect(partitions).toEqual(runs);
  });
});
