import { RedisServer } from '../support/redis-server.js';
import { redisConformanceTarget } from '../support/test-stores.js';
import { describeJobStoreConformance } from './job-store.conformance.js';

let server: RedisServer;

beforeAll(async () => {
  server = await RedisServer.start();
});

afterAll(async () => {
  await server?.dispose();
});

// Each test gets its own key prefix on the one server: an empty store without a FLUSHDB.
describeJobStoreConformance(
  'redis',
  redisConformanceTarget('ae-test', () => ({ url: server.url })),
);

// Four partitions on one server: every case holds when the store is split (docs/storage.md).
describeJobStoreConformance(
  'redis, 4 partitions',
  redisConformanceTarget('ae-test', () => ({ url: server.url, partitions: 4 }), 4),
);
