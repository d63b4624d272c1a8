import { Cluster } from 'ioredis';
import { RedisJobStore } from '../../lib/store/redis/redis-job-store.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { RedisCluster } from '../support/redis-cluster.js';
import { describeJobStoreConformance, newJob } from './job-store.conformance.js';

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
});

describe('The Redis store on a Cluster client of the application', () => {
  it('works through the given Cluster and leaves it open at close()', async () => {
    const client = new Cluster(cluster.nodes, { lazyConnect: true });
    await client.connect();
    try {
      const store = new RedisJobStore({ client, keyPrefix: `{ae-cluster-${++stores}}`, logger: new RecordingLogger() });
      await store.init();
      const input = newJob();
      await store.createJob(input, { now: Date.now(), maximumQueueSize: 100 });
      expect((await store.getJob(input.id))?.id).toBe(input.id);
      await store.close();
      expect(client.status).toBe('ready');
      expect(await client.ping()).toBe('PONG');
    } finally {
      client.disconnect();
    }
  });
});
