import { randomUUID } from 'node:crypto';
import { Cluster } from 'ioredis';
import { StoreUnavailableError } from '../../lib/index.js';
import { StoreKeys } from '../../lib/store/redis/redis-keys.js';
import { RedisJobStore } from '../../lib/store/redis/redis-job-store.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { RedisCluster } from '../support/redis-cluster.js';
import { idsInOnePartition } from '../support/test-stores.js';
import { createStored, describeJobStoreConformance, newJob } from './job-store.conformance.js';

// One 3-master cluster for the file; each test gets its own key prefix, so an empty store.
let cluster: RedisCluster;
let stores = 0;

beforeAll(async () => {
  cluster = await RedisCluster.start();
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

describeJobStoreConformance('redis cluster', {
  async create() {
    const store = new RedisJobStore({
      cluster: { nodes: cluster.nodes },
      keyPrefix: `{ae-cluster-${++stores}}`,
      logger: new RecordingLogger(),
    });
    await store.init();
    return store;
  },
  async destroy(store) {
    await store.close();
  },
  // 12 partitions: a Cluster's default.
  idsInOnePartition: (count) => idsInOnePartition(12, count),
});

describe('The Redis store on a Cluster client of the application', () => {
  it('works through the given Cluster and leaves it open at close()', async () => {
    const client = new Cluster(cluster.nodes, { lazyConnect: true });
    await client.connect();
    try {
      const store = new RedisJobStore({ client, keyPrefix: `{ae-cluster-${++stores}}`, logger: new RecordingLogger() });
      await store.init();
      const input = newJob();
      await createStored(store, input, { now: Date.now(), maximumQueueSize: 100 });
      expect((await store.getJob(input.id))?.id).toBe(input.id);
      await store.close();
      expect(client.status).toBe('ready');
      expect(await client.ping()).toBe('PONG');
    } finally {
      client.disconnect();
    }
  });
});

describe('store.waitForReplicas on a Cluster', () => {
  it('waits on the master of each job: with one replica killed, only the jobs stored on its master are refused', async () => {
    const keyPrefix = `{ae-cluster-${++stores}}`;
    const keys = new StoreKeys(keyPrefix, 12);
    const [master] = await cluster.masters();
    const replica = (await cluster.topology()).find((node) => node.masterId === master!.id)!;
    await replica.server.kill();
    const store = new RedisJobStore({
      cluster: { nodes: cluster.nodes },
      keyPrefix,
      waitForReplicas: { replicas: 1, timeoutMs: 200 },
      logger: new RecordingLogger(),
    });
    await store.init();
    try {
      // A key of another master's slots answers MOVED there.
      const onMaster = async (id: string) =>
        (await cluster.command(master!.port, ['exists', keys.job(id)]).catch(() => 0)) === 1;
      const outcomes = await Promise.all(
        Array.from({ length: 24 }, async () => {
          // Chosen ids, spread over the partitions (generated ones of one moment would share one).
          const input = newJob({ id: randomUUID() });
          const refused = await store.createJob(input, { now: Date.now(), maximumQueueSize: 1000 }).then(
            () => null,
            (error: Error) => error,
          );
          return { id: input.id, refused, onMaster: await onMaster(input.id) };
        }),
      );
      // Its first submits wait and are refused as unconfirmed; later ones are refused before they write.
      for (const outcome of outcomes.filter((each) => each.refused)) {
        expect(outcome.refused).toBeInstanceOf(StoreUnavailableError);
        expect((outcome.refused as StoreUnavailableError).detail).toContain('(store.waitForReplicas)');
      }
      expect(outcomes.filter((each) => each.refused && !each.onMaster && !isNotStored(each.refused))).toEqual([]);
      const accepted = outcomes.filter((each) => !each.refused);
      expect(accepted.length).toBeGreaterThan(0);
      expect(accepted.filter((each) => each.onMaster)).toEqual([]);
      expect(outcomes.some((each) => each.refused)).toBe(true);
    } finally {
      await store.close();
    }
  });
});

/** Refused before the write: nothing stored, so nothing to find on the master. */
function isNotStored(error: Error): boolean {
  return (error as StoreUnavailableError).detail?.includes('the job was not stored') ?? false;
}
