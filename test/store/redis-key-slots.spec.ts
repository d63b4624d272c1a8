import { Redis } from 'ioredis';
import { DEFAULT_KEY_PREFIX, StoreKeys } from '../../lib/store/redis/redis-keys.js';
import { slotOfKey } from '../../lib/store/redis/redis-partitions.js';
import { describeJobStoreConformance } from '../store-conformance/job-store.conformance.js';
import { RedisServer } from '../support/redis-server.js';
import { redisConformanceTarget } from '../support/test-stores.js';

/**
 * Redis Cluster safety, proven on a real cluster node that serves all 16384 slots. Redis itself then
 * rejects a script touching keys of two slots, declared or not (the #!lua shebang turns that check on),
 * so the whole conformance suite running here proves every script keeps to one slot; CLUSTER KEYSLOT
 * then checks every key the suite left behind.
 */
let server: RedisServer;
let admin: Redis;

const slotOf = async (key: string) => Number(await admin.call('CLUSTER', 'KEYSLOT', key));

beforeAll(async () => {
  server = await RedisServer.startClusterNode();
  admin = new Redis(server.url);
  await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
  const deadline = Date.now() + 10_000;
  while (!((await admin.call('CLUSTER', 'INFO')) as string).includes('cluster_state:ok')) {
    if (Date.now() > deadline) throw new Error('the single-node cluster did not become ok');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
});

afterAll(async () => {
  await admin?.quit();
  await server?.dispose();
});

describe('a single-node Redis Cluster', () => {
  it('rejects a script that reaches a key outside the slot of its declared keys', async () => {
    const straying = "#!lua\nredis.call('SET', KEYS[1], 1)\nredis.call('SET', '{elsewhere}:x', 1)";
    await expect(admin.eval(straying, 1, '{async-endpoints}:x')).rejects.toThrow('do not hash to the same slot');
  });
});

describeJobStoreConformance(
  'redis on a Redis Cluster node',
  redisConformanceTarget('ae-cluster', () => ({ url: server.url })),
);

// Four partitions on the same node: each script's keys lie in its partition's slot.
describeJobStoreConformance(
  'redis on a Redis Cluster node, 4 partitions',
  redisConformanceTarget('ae-cluster', () => ({ url: server.url, partitions: 4 }), 4),
);

describe('slotOfKey (the slot a Cluster client writes a store call to)', () => {
  it('agrees with CLUSTER KEYSLOT for keys with a hash tag, without one, and with an empty one', async () => {
    const keys = [
      '{async-endpoints}:status:Queued',
      '{async-endpoints:3.1}:events',
      'app:{jobs}:v1:job:5f0c',
      'no-tag-at-all',
      'empty-tag-{}-{real}',
      '{}',
      'open-{only',
      'ünïcode-{täg}',
    ];
    for (const key of keys) expect({ key, slot: slotOfKey(key) }).toEqual({ key, slot: await slotOf(key) });
  });
});

describe('the key layout', () => {
  it("puts every key of a partition in the slot of the partition's hash tag, and the store-wide ones in the prefix's", async () => {
    for (const [prefix, count] of [
      [DEFAULT_KEY_PREFIX, 1],
      ['app:{jobs}:v1', 1],
      [DEFAULT_KEY_PREFIX, 4],
    ] as const) {
      const keys = new StoreKeys(prefix, count);
      const slotOfTag = (text: string) => slotOf(text.slice(text.indexOf('{') + 1, text.indexOf('}')));
      for (const key of [keys.meta, keys.workers])
        expect({ key, slot: await slotOf(key) }).toEqual({ key, slot: await slotOfTag(prefix) });
      for (const partition of keys.partitions) {
        const tagSlot = await slotOfTag(partition.prefix);
        const partitionKeys = [
          partition.started,
          partition.idempotency,
          partition.idempotencyExpiries,
          partition.sequence,
          partition.recoveryLock,
          partition.names,
          ...Object.values(partition.statusIndex),
          partition.waiting('Process'),
          partition.leases('{odd}'),
          partition.job('3f0c7a52-0d7e-4b8e-9f55-1c2d3e4f5a6b'),
          partition.job('{odd}'),
        ];
        for (const key of partitionKeys) expect({ key, slot: await slotOf(key) }).toEqual({ key, slot: tagSlot });
      }
    }
  });

  it('left every key the conformance suite wrote in the slot of its prefix', async () => {
    const written = await admin.keys('{ae-cluster-*');
    const prefixes = new Set(written.map((key) => key.slice(0, key.indexOf('}') + 1)));
    expect(prefixes.size).toBeGreaterThan(60);
    expect(written.some((key) => /^\{ae-cluster-\d+:\d+(\.\d+)?\}:job:/.test(key))).toBe(true);
    expect(written.some((key) => key.includes(':job:'))).toBe(true);
    for (const key of written) {
      const prefix = key.slice(0, key.indexOf('}') + 1);
      expect({ key, slot: await slotOf(key) }).toEqual({ key, slot: await slotOf(prefix) });
    }
  });
});
