import { RedisJobStore } from '../../lib/store/redis/redis-job-store.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { RedisServer } from '../support/redis-server.js';
import { idsInOnePartition } from '../support/test-stores.js';
import { describeJobStoreConformance } from './job-store.conformance.js';

let server: RedisServer;
let stores = 0;

beforeAll(async () => {
  server = await RedisServer.start();
});

afterAll(async () => {
  await server?.dispose();
});

// Each test gets its own key prefix on the one server: an empty store without a FLUSHDB.
describeJobStoreConformance('redis', {
  async create() {
    const store = new RedisJobStore({
      url: server.url,
      keyPrefix: `{ae-test-${++stores}}`,
      logger: new RecordingLogger(),
    });
    await store.init();
    return store;
  },
  async destroy(store) {
    await store.close();
  },
});

// Four partitions on one server: every case holds when the store is split (docs/storage.md).
describeJobStoreConformance('redis, 4 partitions', {
  async create() {
    const store = new RedisJobStore({
      url: server.url,
      keyPrefix: `{ae-test-${++stores}}`,
      partitions: 4,
      logger: new RecordingLogger(),
    });
    await store.init();
    return store;
  },
  async destroy(store) {
    await store.close();
  },
  idsInOnePartition: (count) => idsInOnePartition(4, count),
});
