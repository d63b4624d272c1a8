import { sampleOptions } from '../../sample/app.module.js';

describe('the sample Redis environment variables', () => {
  it('REDIS_CLUSTER_NODES makes the store a Redis Cluster with those seed nodes, for every role', () => {
    for (const role of ['all', 'api', 'worker']) {
      expect(
        sampleOptions({ ASYNC_ENDPOINTS_ROLE: role, REDIS_CLUSTER_NODES: '10.0.0.1:7000, 10.0.0.2:7000' }).store,
      ).toEqual({ type: 'redis', cluster: { nodes: ['10.0.0.1:7000', '10.0.0.2:7000'] } });
    }
  });

  it('REDIS_WAIT_REPLICAS turns on store.waitForReplicas with REDIS_URL or REDIS_CLUSTER_NODES', () => {
    expect(sampleOptions({ REDIS_URL: 'redis://r:6379', REDIS_WAIT_REPLICAS: '1' }).store).toEqual({
      type: 'redis',
      url: 'redis://r:6379',
      waitForReplicas: { replicas: 1, timeoutMs: 500 },
    });
    expect(sampleOptions({ REDIS_CLUSTER_NODES: 'c:7000', REDIS_WAIT_REPLICAS: '2' }).store).toMatchObject({
      waitForReplicas: { replicas: 2, timeoutMs: 500 },
    });
  });

  it('refuses REDIS_URL with REDIS_CLUSTER_NODES, and REDIS_WAIT_REPLICAS without Redis, naming the variables', () => {
    expect(() => sampleOptions({ REDIS_URL: 'redis://r:6379', REDIS_CLUSTER_NODES: 'c:7000' })).toThrow(
      'Set REDIS_URL (one Redis) or REDIS_CLUSTER_NODES (a Redis Cluster), not both.',
    );
    expect(() => sampleOptions({ REDIS_WAIT_REPLICAS: '1' })).toThrow(
      'REDIS_WAIT_REPLICAS needs REDIS_URL or REDIS_CLUSTER_NODES.',
    );
  });
});
