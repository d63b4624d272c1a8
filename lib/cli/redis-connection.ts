import type { Redis } from 'ioredis';
import type { RedisClient } from '../store/redis/redis-connections.js';
import { describeTarget, type Connection, type RedisTarget } from './arguments.js';
import { CommandFailure } from './commands.js';

/** How long the CLI waits for Redis before it gives up. */
const CONNECT_WAIT_MS = 3000;
/** How long a Cluster node's socket may take to close once the CLI is done with it. */
const DISCONNECT_WAIT_MS = 200;

/**
 * A connection of the CLI's own, connected, so that an unreachable Redis is one clear error within a
 * few seconds rather than a client reconnecting: to one Redis (`--redis-url`), or to a Redis Cluster
 * (`--cluster-nodes`) as the store's `store.cluster` connects, the password from REDIS_PASSWORD on every
 * node. `commandTimeout` replaces the store's (1.5 s) for commands that carry batches. Close it with
 * closeConnection.
 */
export async function openRedis(
  connection: Connection & { target: Extract<RedisTarget, { type: 'url' }> },
  commandTimeout?: number,
): Promise<Redis>;
export async function openRedis(connection: Connection, commandTimeout?: number): Promise<RedisClient>;
export async function openRedis(connection: Connection, commandTimeout?: number): Promise<RedisClient> {
  // Loaded here, so that --help and usage errors answer without loading ioredis.
  const { closeConnection, connect, createClusterCommandConnection, createCommandConnection } =
    await import('../store/redis/redis-connections.js');
  const options = {
    ...(connection.password ? { password: connection.password } : {}),
    ...(commandTimeout ? { commandTimeout } : {}),
  };
  const { target } = connection;
  // disconnectTimeout: ioredis waits this long (2 s by default) for a node's socket to close once it ends
  // it, and starts that wait on the sockets of nodes that never connected too: it would hold the process
  // of a CLI that could not reach the Cluster.
  const client =
    target.type === 'url'
      ? createCommandConnection(target.url, options)
      : createClusterCommandConnection(target.nodes, {
          redisOptions: { ...options, disconnectTimeout: DISCONNECT_WAIT_MS },
        });
  // ioredis says of a Cluster it cannot reach only "Failed to refresh slots cache.": each node's own
  // failure says why.
  const nodeErrors = new Map<string, string>();
  const onNodeError = (error: Error, node: string) => {
    if (error.message !== CLOSED || !nodeErrors.has(node)) nodeErrors.set(node, error.message);
  };
  client.on('node error', onNodeError);
  try {
    await connect(client, CONNECT_WAIT_MS);
  } catch (error) {
    await closeConnection(client);
    const reason =
      target.type === 'url' ? (error as Error).message : clusterFailure(error as Error, nodeErrors, target.nodes);
    const hint = /NOAUTH|WRONGPASS/.test(reason)
      ? target.type === 'url'
        ? ' (give the password in the URL, redis://:<password>@host:port, or in REDIS_PASSWORD)'
        : ' (give the password in REDIS_PASSWORD)'
      : target.type === 'cluster' && reason.includes('cluster support disabled')
        ? ' (that Redis is not a Cluster node: pass --redis-url redis://host:port for one Redis)'
        : '';
    const where = target.type === 'url' ? `Redis at ${describeTarget(target)}` : describeTarget(target);
    throw new CommandFailure(`Cannot connect to ${where}: ${reason}${hint}`);
  } finally {
    client.off('node error', onNodeError);
  }
  return client;
}

/** What ioredis says of a command on a connection that failed, whatever the failure was. */
const CLOSED = 'Connection is closed.';

/**
 * Why a Cluster could not be reached: none of the seed nodes answered with the slot map, or a master
 * it names did not answer in time; then each node's failure, the seed nodes first.
 */
function clusterFailure(error: Error, nodeErrors: ReadonlyMap<string, string>, seeds: readonly string[]): string {
  const what = error.name === 'ClusterAllFailedError' ? 'no seed node answered with the slot map' : error.message;
  const rank = (node: string) => (seeds.includes(node) ? seeds.indexOf(node) : seeds.length);
  const nodes = [...nodeErrors]
    .sort(([a], [b]) => rank(a) - rank(b))
    .map(([node, message]) => `${node}: ${message}`)
    .join('; ');
  return nodes ? `${what} (${nodes})` : what;
}
