import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePorts, RedisServer } from './redis-server.js';

const run = promisify(execFile);
const READY_TIMEOUT_MS = 20_000;
const FAILOVER_TIMEOUT_MS = 20_000;

/** One node of the cluster as CLUSTER NODES describes it. */
export interface ClusterNodeInfo {
  id: string;
  port: number;
  role: 'master' | 'replica';
  /** The id of its master, for a replica. */
  masterId: string | null;
  server: RedisServer;
}

/**
 * A throw-away Redis Cluster for one test file: `masters` masters with one replica each, every node a
 * redis-server from PATH on a free port with its cluster bus on another free port (RedisServer.startClusterNode),
 * nothing persisted, formed by `redis-cli --cluster create`.
 * A short cluster-node-timeout (1 s) makes a killed master's replica take over within a few seconds.
 * stop() kills every node and removes their directories; call it in afterAll, so it runs when a test fails.
 */
export class RedisCluster {
  private constructor(private readonly servers: RedisServer[]) {}

  /** `replicas`: per master, 1 (the tests) or 0 (the benchmark, which measures the masters alone). */
  static async start(masters = 3, { replicas = 1 }: { replicas?: 0 | 1 } = {}): Promise<RedisCluster> {
    const servers: RedisServer[] = [];
    const cluster = new RedisCluster(servers);
    try {
      // Every node's client and bus ports at once, so that no two nodes draw the same port.
      const count = masters * (1 + replicas);
      const ports = await freePorts(2 * count);
      const started = await Promise.all(
        Array.from({ length: count }, (_, i) =>
          RedisServer.startClusterNode(
            [
              '--cluster-config-file',
              'nodes.conf',
              '--cluster-node-timeout',
              '1000',
              // A replica may take over however stale it is: the tests kill masters on purpose.
              '--cluster-replica-validity-factor',
              '0',
            ],
            [ports[2 * i]!, ports[2 * i + 1]!],
          ),
        ),
      );
      servers.push(...started);
      await run('redis-cli', [
        '--cluster',
        'create',
        ...servers.map((server) => `127.0.0.1:${server.port}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ]);
      await cluster.waitUntilHealthy(masters * replicas);
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  /** The process ids of the running nodes. */
  get pids(): number[] {
    return this.servers.flatMap((server) => (server.pid === null ? [] : [server.pid]));
  }

  /** Seed nodes for `store.cluster.nodes`: every node, as `host:port`. */
  get nodes(): string[] {
    return this.servers.filter((server) => server.running).map((server) => `127.0.0.1:${server.port}`);
  }

  /**
   * The nodes as CLUSTER NODES on a live node tells them, without the failed ones and without those
   * this cluster stopped (a node killed a moment ago is not flagged failed yet).
   */
  async topology(): Promise<ClusterNodeInfo[]> {
    const live = this.servers.find((server) => server.running);
    if (!live) throw new Error('Every node of the test cluster is stopped.');
    const text = await this.command(live.port, ['cluster', 'nodes']);
    return String(text)
      .trim()
      .split('\n')
      .map((line) => line.split(' '))
      .filter(([, , flags]) => !flags!.includes('fail') && !flags!.includes('noaddr'))
      .map(([id, address, flags, masterId]) => {
        const port = Number(/:(\d+)@/.exec(address!)![1]);
        return {
          id: id!,
          port,
          role: flags!.includes('master') ? 'master' : 'replica',
          masterId: masterId === '-' ? null : masterId!,
          server: this.servers.find((server) => server.port === port)!,
        } as ClusterNodeInfo;
      })
      .filter((node) => node.server.running);
  }

  async masters(): Promise<ClusterNodeInfo[]> {
    return (await this.topology()).filter((node) => node.role === 'master');
  }

  /** Runs one command on one node (not through the cluster's routing). */
  async command(port: number, args: string[]): Promise<unknown> {
    const client = nodeClient(port);
    try {
      await client.connect();
      return await client.call(args[0]!, ...args.slice(1));
    } finally {
      client.disconnect();
    }
  }

  /** Runs commands on one node in one pipeline (not through the cluster's routing); their replies, in order. */
  async pipeline(port: number, commands: readonly string[][]): Promise<unknown[]> {
    const client = nodeClient(port);
    try {
      await client.connect();
      const pipeline = client.pipeline();
      for (const [name, ...args] of commands) pipeline.call(name!, ...args);
      return (await pipeline.exec())!.map(([error, reply]) => {
        if (error) throw error;
        return reply;
      });
    } finally {
      client.disconnect();
    }
  }

  /** The live replica of a master. */
  async replicaOf(master: ClusterNodeInfo): Promise<ClusterNodeInfo> {
    const replica = (await this.topology()).find((node) => node.masterId === master.id);
    if (!replica) throw new Error(`Master ${master.port} has no replica.`);
    return replica;
  }

  /**
   * Resolves once the replica holds everything its master has written so far: a probe key written on
   * the master after all that, then WAIT for one replica (which asks it for its offset at once).
   */
  async waitUntilReplicated(master: ClusterNodeInfo): Promise<void> {
    // WAIT below may take up to READY_TIMEOUT_MS.
    const client = nodeClient(master.port, READY_TIMEOUT_MS + 5000);
    try {
      await client.connect();
      // A key of one of this master's slots: the others answer MOVED.
      let probe = '';
      for (let i = 0; !probe; i++) {
        const key = `replication-probe:${i}`;
        const written = await client.set(key, '1').then(
          () => true,
          (error: Error) => {
            // Another master's slot; any other error is the answer.
            if (!error.message.startsWith('MOVED')) throw error;
            return false;
          },
        );
        if (written) probe = key;
        if (i > 1000) throw new Error(`No key of master ${master.port}'s slots among 1000 tried.`);
      }
      const acknowledged = await client.wait(1, READY_TIMEOUT_MS);
      await client.del(probe);
      if (acknowledged < 1)
        throw new Error(`No replica of master ${master.port} caught up within ${READY_TIMEOUT_MS} ms.`);
    } finally {
      client.disconnect();
    }
  }

  /**
   * Stops replication from a master to its replica for good, until the master dies: the replica is frozen
   * (SIGSTOP), so it cannot reconnect, and the master drops its link to it, so that nothing more is sent.
   * (SIGSTOP alone is not enough: what the master sends still lands in the frozen replica's socket buffer,
   * and the replica applies it when it resumes, even after the master died.) killMaster resumes it.
   */
  async cutReplication(master: ClusterNodeInfo, replica: ClusterNodeInfo): Promise<void> {
    replica.server.pause();
    const dropped = Number(await this.command(master.port, ['client', 'kill', 'type', 'replica']));
    if (dropped < 1) throw new Error(`Master ${master.port} had no replica link to drop.`);
  }

  /**
   * Kills a master with SIGKILL (a crash), resumes its replica (`replica`, found in the topology if not
   * given: give it when it is frozen, as the topology may flag it failed), and resolves once that replica
   * has been promoted and the cluster answers again on every live node. Returns the promoted node. A
   * replica not promoted by itself within `takeoverAfterMs` is told to take over (CLUSTER FAILOVER
   * TAKEOVER, which needs no vote of the masters).
   */
  async killMaster(
    master: ClusterNodeInfo,
    { replica, takeoverAfterMs }: { replica?: ClusterNodeInfo; takeoverAfterMs?: number } = {},
  ): Promise<ClusterNodeInfo> {
    const successor = replica ?? (await this.replicaOf(master));
    await master.server.kill();
    successor.server.resume();
    const started = Date.now();
    const deadline = started + FAILOVER_TIMEOUT_MS;
    let tookOver = false;
    for (;;) {
      const role = (await this.command(successor.port, ['role'])) as [string];
      if (role[0] === 'master' && (await this.allSay('cluster_state:ok'))) return { ...successor, role: 'master' };
      if (
        role[0] !== 'master' &&
        !tookOver &&
        takeoverAfterMs !== undefined &&
        Date.now() - started > takeoverAfterMs
      ) {
        await this.command(successor.port, ['cluster', 'failover', 'takeover']);
        tookOver = true;
      }
      if (Date.now() > deadline)
        throw new Error(`Replica ${successor.port} was not promoted within ${FAILOVER_TIMEOUT_MS} ms.`);
      await sleep(100);
    }
  }

  /**
   * Undoes what a case that failed half-way may have left: every node resumed (a replica frozen by
   * cutReplication) and the writes of every running one unpaused (CLIENT PAUSE), so that the next case
   * meets a Cluster that answers instead of hanging on a frozen node.
   */
  async release(): Promise<void> {
    for (const server of this.servers) server.resume();
    await Promise.all(
      this.servers
        .filter((server) => server.running)
        .map((server) => this.command(server.port, ['client', 'unpause']).catch(() => undefined)),
    );
  }

  /** Kills every node and removes their directories. */
  async stop(): Promise<void> {
    await Promise.all(this.servers.map((server) => server.dispose()));
  }

  /** cluster_state:ok on every node, and every replica in sync with its master (WAIT counts it). */
  private async waitUntilHealthy(replicas: number): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (
        (await this.allSay('cluster_state:ok')) &&
        (await this.replicasInSync()) === replicas &&
        (await this.allLinked())
      ) {
        return;
      }
      if (Date.now() > deadline) throw new Error(`The test cluster was not ready within ${READY_TIMEOUT_MS} ms.`);
      await sleep(50);
    }
  }

  /** Every node sees every other one connected over the cluster bus (which carries PUBLISH between nodes). */
  private async allLinked(): Promise<boolean> {
    const views = await Promise.all(this.servers.map((server) => this.command(server.port, ['cluster', 'nodes'])));
    return views.every((view) => {
      const lines = String(view).trim().split('\n');
      return (
        lines.length === this.servers.length &&
        lines.every((line) => / connected/.test(line) && !/handshake/.test(line))
      );
    });
  }

  private async allSay(line: string): Promise<boolean> {
    const live = this.servers.filter((server) => server.running);
    const infos = await Promise.all(live.map((server) => this.command(server.port, ['cluster', 'info'])));
    return infos.every((info) => String(info).includes(line));
  }

  private async replicasInSync(): Promise<number> {
    const infos = await Promise.all(
      this.servers.map((server) => this.command(server.port, ['info', 'replication']).then(String)),
    );
    return infos.filter((info) => info.includes('role:slave') && info.includes('master_link_status:up')).length;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A connection to one node that gives up within seconds: a frozen node fails the case, not hangs it. */
function nodeClient(port: number, commandTimeout = 5000): Redis {
  const client = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 5000,
    commandTimeout,
  });
  client.on('error', () => undefined);
  return client;
}
