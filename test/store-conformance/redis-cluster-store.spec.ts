import { RedisJobStore } from '../../lib/store/redis/redis-job-store.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { RedisCluster } from '../support/redis-cluster.js';
import { describeJobStoreConformance } from './job-store.conformance.js';

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
