import { randomUUID } from 'node:crypto';
import { Cluster } from 'ioredis';
import { StoreUnavailableError } from '../../lib/index.js';
import type { StoreEvent } from '../../lib/store/job-store.js';
import { StoreKeys } from '../../lib/store/redis/redis-keys.js';
import { RedisJobStore } from '../../lib/store/redis/redis-job-store.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { RedisCluster } from '../support/redis-cluster.js';
import { redisConformanceTarget } from '../support/test-stores.js';
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

// 12 partitions: a Cluster's default.
describeJobStoreConformance(
  'redis cluster',
  redisConformanceTarget('ae-cluster-conformance', () => ({ cluster: { nodes: cluster.nodes } }), 12),
);

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

describe('Submissions on a Cluster', () => {
  it("writes a batch's script and its job-available SPUBLISH to the master's socket in one write", async () => {
    const client = new Cluster(cluster.nodes, { lazyConnect: true });
    await client.connect();
    try {
      const store = new RedisJobStore({ client, keyPrefix: `{ae-cluster-${++stores}}`, logger: new RecordingLogger() });
      await store.init();
      await createStored(store, newJob(), { now: Date.now(), maximumQueueSize: 100 });
      // Each socket write of the masters' connections, with the commands it carried.
      const writes: number[] = [];
      for (const node of client.nodes('master')) {
        const socket = node.stream as unknown as {
          _write: (chunk: unknown, encoding: string, callback: () => void) => void;
          _writev: (chunks: unknown[], callback: () => void) => void;
        };
        const [write, writev] = [socket._write.bind(socket), socket._writev.bind(socket)];
        socket._write = (chunk, encoding, callback) => {
          writes.push(1);
          write(chunk, encoding, callback);
        };
        socket._writev = (chunks, callback) => {
          writes.push(chunks.length);
          writev(chunks, callback);
        };
      }
      await createStored(store, newJob(), { now: Date.now(), maximumQueueSize: 100 });
      // One write of two commands: EVALSHA, then SPUBLISH (one command each would be two writes).
      expect(writes).toEqual([2]);
      await store.close();
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

describe('Store events on a Cluster (a shard channel per partition)', () => {
  // After the waitForReplicas case: it kills a replica, this kills a master (with a live replica).
  const retention = { completedTtlMs: 60_000, failedTtlMs: 120_000 };
  const keyPrefix = `{ae-cluster-${++stores}}`;
  const keys = new StoreKeys(keyPrefix, 12);
  const heard: StoreEvent[] = [];
  let listening: RedisJobStore;
  const listeningLogger = new RecordingLogger();
  let writing: RedisJobStore;

  beforeAll(async () => {
    [listening, writing] = [
      new RedisJobStore({ cluster: { nodes: cluster.nodes }, keyPrefix, logger: listeningLogger }),
      new RedisJobStore({ cluster: { nodes: cluster.nodes }, keyPrefix, logger: new RecordingLogger() }),
    ];
    // One after the other: two stores starting at once on an empty prefix may race on its layout meta.
    await listening.init();
    await writing.init();
    listening.subscribe((event) => heard.push(event));
  });

  afterAll(async () => {
    await Promise.all([listening?.close(), writing?.close()]);
  });

  /** The port of the master that holds each partition's slot, as the cluster tells it now. */
  async function masterOfPartitions(): Promise<number[]> {
    const [live] = await cluster.masters();
    const ranges = (await cluster.command(live!.port, ['cluster', 'slots'])) as [number, number, [string, number]][];
    return Promise.all(
      keys.partitions.map(async (partition) => {
        const slot = (await cluster.command(live!.port, ['cluster', 'keyslot', partition.events])) as number;
        return ranges.find(([from, to]) => slot >= from && slot <= to)![2][1];
      }),
    );
  }

  /**
   * Through the other store, submits a job of name `name` in partition k and cancels it, until the
   * listener has heard both its job-available (which carries the name) and its job-finished (a
   * failover refuses calls for a while).
   */
  async function heardFromPartition(k: number, name: string): Promise<void> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      let id = randomUUID();
      while (keys.partitionIndexOf(id) !== k) id = randomUUID();
      await writing
        .createJob(newJob({ id, name }), { now: Date.now(), maximumQueueSize: 1000 })
        .then(() => writing.cancelJob(id, { now: Date.now(), retention }))
        .catch(() => undefined);
      for (let wait = 0; wait < 10; wait++) {
        const available = heard.some((event) => event.type === 'job-available' && event.name === name);
        if (available && heard.some((event) => event.type === 'job-finished' && event.jobId === id)) return;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      if (Date.now() > deadline) throw new Error(`The listener did not hear partition ${k}'s events within 20 s.`);
    }
  }

  /** The plain PUBLISH messages the nodes have sent over the cluster bus (to every other node). */
  async function broadcastsSent(): Promise<number> {
    const infos = await Promise.all(
      (await cluster.topology()).map((node) => cluster.command(node.port, ['cluster', 'info'])),
    );
    return infos.reduce<number>(
      (sum, info) => sum + Number(/cluster_stats_messages_publish_sent:(\d+)/.exec(String(info))?.[1] ?? 0),
      0,
    );
  }

  it('lets a listener of one store hear the job-available and job-finished events of another, from every partition on every master, none broadcast to every node', async () => {
    expect(new Set(await masterOfPartitions()).size).toBe(3);
    const broadcastsBefore = await broadcastsSent();
    for (let k = 0; k < keys.partitions.length; k++) await heardFromPartition(k, `Before-${k}`);
    expect((await broadcastsSent()) - broadcastsBefore).toBe(0);
  }, 60_000);

  it('still lets it hear them, from the partitions of a killed master, once its replica is promoted, and logs the failure of that node alone', async () => {
    const topology = await cluster.topology();
    const victim = topology.find((node) => node.role === 'master' && topology.some((n) => n.masterId === node.id))!;
    const moved = (await masterOfPartitions()).flatMap((port, k) => (port === victim.port ? [k] : []));
    expect(moved.length).toBeGreaterThan(0);
    const promoted = await cluster.killMaster(victim);
    const after = await masterOfPartitions();
    expect(moved.map((k) => after[k])).toEqual(moved.map(() => promoted.port));
    for (const k of moved) await heardFromPartition(k, `After-${k}`);
    // The killed node is named; the subscriber as a whole did not fail (nor will it say it is back).
    const warnings = listeningLogger.messages('warn');
    expect(warnings).toContainEqual(
      expect.stringContaining(`Redis Cluster node 127.0.0.1:${victim.port} (subscriber connection) failed`),
    );
    expect(warnings.filter((warning) => warning.startsWith('Redis subscriber connection failed'))).toEqual([]);
  }, 60_000);
});

/** Refused before the write: nothing stored, so nothing to find on the master. */
function isNotStored(error: Error): boolean {
  return (error as StoreUnavailableError).detail?.includes('the job was not stored') ?? false;
}
