import { Cluster, Redis } from 'ioredis';
import { InvalidAsyncEndpointsOptionsError, type RedisStoreConfig } from '../../lib/index.js';
import { resolveOptions } from '../../lib/options/resolve-options.js';

function problemsOf(store: unknown): string {
  try {
    resolveOptions({ store: store as RedisStoreConfig });
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidAsyncEndpointsOptionsError);
    return (error as Error).message;
  }
  throw new Error('resolveOptions accepted the options');
}

describe('resolveOptions: Redis Cluster, partitions and waitForReplicas', () => {
  it.each([
    [{ type: 'redis', cluster: { nodes: [] } }, 'store.cluster.nodes = []: must be a non-empty array of seed nodes'],
    [{ type: 'redis', cluster: {} }, 'store.cluster.nodes = undefined: must be a non-empty array'],
    [{ type: 'redis', cluster: ['a:1'] }, 'store.cluster = ["a:1"]: must be { nodes:'],
    [
      { type: 'redis', cluster: { nodes: ['10.0.0.1:7000', 'redis-1'] } },
      `store.cluster.nodes[1] = "redis-1": must be 'host:port' (port 1-65535) or { host: string, port: number }`,
    ],
    [{ type: 'redis', cluster: { nodes: ['h:70000'] } }, 'store.cluster.nodes[0] = "h:70000": must be'],
    [{ type: 'redis', cluster: { nodes: [{ host: 'h' }] } }, 'store.cluster.nodes[0] = {"host":"h"}: must be'],
    [{ type: 'redis', cluster: { nodes: ['h:1'], seeds: [] } }, 'store.cluster.seeds: there is no such option'],
    [{ type: 'redis', cluster: { nodes: ['h:1'], options: 5 } }, 'store.cluster.options = 5: must be an object'],
    [
      { type: 'redis', url: 'redis://h:1', cluster: { nodes: ['h:1'] } },
      'store.url and store.cluster: give only one of them',
    ],
    [
      { type: 'redis', client: new Redis({ lazyConnect: true }), url: 'redis://h:1' },
      'store.url and store.client: give only one of them',
    ],
    [
      { type: 'redis', cluster: { nodes: ['h:1'] }, options: { password: 'x' } },
      'store.options and store.cluster: ioredis options of a Cluster go in store.cluster.options',
    ],
    [{ type: 'redis', partitions: 0 }, 'store.partitions = 0: must be an integer from 1 to 1024'],
    [{ type: 'redis', partitions: 1025 }, 'store.partitions = 1025: must be an integer from 1 to 1024'],
    [{ type: 'redis', partitions: 2.5 }, 'store.partitions = 2.5: must be an integer from 1 to 1024'],
    [
      { type: 'redis', waitForReplicas: 1 },
      'store.waitForReplicas = 1: must be { replicas: number, timeoutMs: number }',
    ],
    [
      { type: 'redis', waitForReplicas: { replicas: 0, timeoutMs: 100 } },
      'store.waitForReplicas.replicas = 0: must be an integer of at least 1',
    ],
    [
      { type: 'redis', waitForReplicas: { replicas: 1, timeoutMs: 0 } },
      'store.waitForReplicas.timeoutMs = 0: must be an integer from 1 to 1499, below the command timeout (1500 ms)',
    ],
    [
      { type: 'redis', options: { commandTimeout: 5000 }, waitForReplicas: { replicas: 1, timeoutMs: 5000 } },
      'store.waitForReplicas.timeoutMs = 5000: must be an integer from 1 to 4999, below the command timeout (5000 ms)',
    ],
    [
      { type: 'redis', waitForReplicas: { replicas: 1, timeoutMs: 100, timeout: 1 } },
      'store.waitForReplicas.timeout: there is no such option (allowed: replicas, timeoutMs)',
    ],
  ])('rejects %j naming the option, the value and the rule', (store, expected) => {
    expect(problemsOf(store)).toContain(expected);
  });

  it('accepts seed nodes as host:port strings and { host, port } objects', () => {
    const store: RedisStoreConfig = {
      type: 'redis',
      cluster: { nodes: ['10.0.0.1:7000', { host: 'redis-2', port: 7001 }] },
    };
    expect(resolveOptions({ store }).store).toMatchObject(store);
  });

  it('defaults store.partitions to 1 on a single Redis and to 12 on a Cluster', () => {
    const partitions = (store: RedisStoreConfig) => (resolveOptions({ store }).store as RedisStoreConfig).partitions;
    const cluster = new Cluster(['127.0.0.1:1'], { lazyConnect: true });
    const redis = new Redis({ lazyConnect: true });
    expect(partitions({ type: 'redis' })).toBe(1);
    expect(partitions({ type: 'redis', url: 'redis://h:1' })).toBe(1);
    expect(partitions({ type: 'redis', client: redis })).toBe(1);
    expect(partitions({ type: 'redis', cluster: { nodes: ['h:1'] } })).toBe(12);
    expect(partitions({ type: 'redis', client: cluster })).toBe(12);
    expect(partitions({ type: 'redis', cluster: { nodes: ['h:1'] }, partitions: 3 })).toBe(3);
  });

  it('allows a replica wait up to the command timeout set in the cluster node options', () => {
    const store: RedisStoreConfig = {
      type: 'redis',
      cluster: { nodes: ['h:1'], options: { redisOptions: { commandTimeout: 3000 } } },
      waitForReplicas: { replicas: 2, timeoutMs: 2500 },
    };
    expect(resolveOptions({ store }).store).toMatchObject({ waitForReplicas: { replicas: 2, timeoutMs: 2500 } });
  });
});
