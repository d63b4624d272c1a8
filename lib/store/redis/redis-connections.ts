import type { LoggerService } from '@nestjs/common';
import { Cluster, Redis, type ClusterNode, type ClusterOptions, type RedisOptions } from 'ioredis';

export type StoreLogger = Pick<LoggerService, 'log' | 'warn' | 'error'>;

/** A connection the store talks through: one Redis, or a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/** A call to a Redis that hangs fails after this: well inside the 2 s in which the HTTP layer must answer. */
export const COMMAND_TIMEOUT_MS = 1500;
export const CONNECT_TIMEOUT_MS = 2000;

/**
 * The connection for commands, built to fail fast: no offline queue (a call while Redis is down rejects
 * at once), a command timeout (a Redis that hangs), and nothing resent after a reconnect (the scripts
 * are not idempotent: a lost reply fails the call rather than running a transition twice). Both
 * timeouts may be tuned through `options`; the rest may not.
 */
export function createCommandConnection(url: string | undefined, options: RedisOptions = {}): Redis {
  const failFast: RedisOptions = {
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: COMMAND_TIMEOUT_MS,
    ...options,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
  };
  return url === undefined ? new Redis(failFast) : new Redis(url, failFast);
}

/**
 * The command connection to a Redis Cluster, failing fast as createCommandConnection's does: no offline
 * queue, each node's connection with the same timeouts and nothing resent. ioredis still follows
 * MOVED and ASK and retries CLUSTERDOWN and TRYAGAIN (Redis ran nothing then), but not a call whose
 * connection closed under it (`retryDelayOnFailover: 0`): the script may have run, and running it
 * again could apply a transition twice. The slot map is refreshed every second, so that after a
 * failover calls reach the promoted replica within about a second (`slotsRefreshInterval`, refreshed
 * by refreshSlotsEvery). Each of these may be set in `options` except the offline queue and what is
 * resent.
 */
export function createClusterCommandConnection(nodes: readonly ClusterNode[], options: ClusterOptions = {}): Cluster {
  const cluster = new Cluster([...nodes], {
    retryDelayOnFailover: 0,
    ...options,
    slotsRefreshInterval: 0,
    lazyConnect: true,
    enableOfflineQueue: false,
    redisOptions: {
      connectTimeout: CONNECT_TIMEOUT_MS,
      commandTimeout: COMMAND_TIMEOUT_MS,
      ...options.redisOptions,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
    },
  });
  // ioredis connects a node on its first command and, without an offline queue, refuses the calls
  // made while that connection is under way: each node is connected as soon as the slot map names it.
  cluster.on('+node', (node: Redis) => {
    if (node.status === 'wait') node.connect().catch(() => undefined);
  });
  refreshSlotsEvery(cluster, options.slotsRefreshInterval ?? SLOTS_REFRESH_INTERVAL_MS);
  return cluster;
}

/** How often the store's Cluster connections refresh their slot map, unless `slotsRefreshInterval` says. */
const SLOTS_REFRESH_INTERVAL_MS = 1000;

/** The slot-map refresh period of each Cluster connection refreshSlotsEvery() runs. */
const slotRefreshPeriods = new WeakMap<Cluster, number>();

/**
 * Refreshes a Cluster connection's slot map every `periodMs` while it is ready, in place of ioredis'
 * `slotsRefreshInterval` (which the connection must have set to 0): ioredis re-arms that timer when a
 * refresh under way at quit() ends, and then every period for ever, so that a closed connection kept
 * its process alive. This timer stops when the connection closes or ends (a close while reconnecting
 * emits no 'end'), starts again when it is ready again, and never holds the process open (unref). A
 * period of 0 refreshes only on ioredis' own triggers (MOVED, CLUSTERDOWN; for sharded subscribers, a
 * lost node).
 */
function refreshSlotsEvery(cluster: Cluster, periodMs: number): void {
  slotRefreshPeriods.set(cluster, periodMs);
  if (!(periodMs > 0)) return;
  let timer: NodeJS.Timeout | undefined;
  // ioredis joins a refresh to one under way.
  const refresh = () => {
    if (cluster.status === 'ready') cluster.refreshSlotsCache();
  };
  const stop = () => {
    clearInterval(timer);
    timer = undefined;
  };
  cluster.on('ready', () => {
    if (timer !== undefined) return;
    timer = setInterval(refresh, periodMs);
    timer.unref();
  });
  cluster.on('close', stop);
  cluster.on('end', stop);
}

/** Where the store's commands go: the `store` options that say which Redis to use. */
export interface RedisConnectionOptions {
  url?: string;
  options?: RedisOptions;
  client?: RedisClient;
  cluster?: { nodes: readonly ClusterNode[]; options?: ClusterOptions };
}

/**
 * The command connection the options ask for: the client given (`owned: false`, never closed by the
 * store), else a Cluster connection for `cluster`, else one to `url`.
 */
export function createStoreConnection(options: RedisConnectionOptions): { client: RedisClient; owned: boolean } {
  if (options.client) return { client: options.client, owned: false };
  if (options.cluster) {
    return { client: createClusterCommandConnection(options.cluster.nodes, options.cluster.options), owned: true };
  }
  return { client: createCommandConnection(options.url, options.options), owned: true };
}

/**
 * The pub/sub connection: it waits for Redis and reconnects rather than failing, and ioredis subscribes
 * it to its shard channels again after every reconnect (and resends a SSUBSCRIBE the outage cut short).
 * It connects on the first subscription. On a Cluster, a shard channel's messages stay on the shard
 * that holds its slot, so ioredis' sharded subscribers hold one connection per master, each
 * SSUBSCRIBEd to the channels of its slots; when a master fails or slots move, ioredis refreshes the
 * slot map and subscribes again on the node that now holds them.
 */
export function createSubscriberConnection<C extends RedisClient>(commands: C): C {
  const waiting = {
    maxRetriesPerRequest: null,
    autoResubscribe: true,
    autoResendUnfulfilledCommands: true,
    commandTimeout: undefined,
  };
  if (commands instanceof Cluster) {
    const subscriber = commands.duplicate([], {
      lazyConnect: true,
      enableOfflineQueue: true,
      shardedSubscribers: true,
      slotsRefreshInterval: 0,
      redisOptions: { ...commands.options.redisOptions, ...waiting },
    });
    // The period of the store's own connection, or the one set on an application's Cluster client.
    refreshSlotsEvery(subscriber, slotRefreshPeriods.get(commands) ?? commands.options.slotsRefreshInterval ?? 0);
    return subscriber as C;
  }
  return (commands as Redis).duplicate({ lazyConnect: true, enableOfflineQueue: true, ...waiting }) as C;
}

/** A Cluster node that fails is logged at most this often (ioredis reports each failed attempt). */
const NODE_ERROR_LOG_INTERVAL_MS = 60_000;

/**
 * Logs each outage of a connection once, and its end. Failures before the first connection are left to
 * the store's init() to report. The 'error' listener is also what keeps ioredis' error events (one per
 * failed reconnect) from crashing the process. Returns the function that stops watching.
 */
export function watchConnection(
  connection: RedisClient,
  role: string,
  logger: StoreLogger,
  { shardedSubscriber = false }: { shardedSubscriber?: boolean } = {},
): () => void {
  let state: 'new' | 'up' | 'down' = connection.status === 'ready' ? 'up' : 'new';
  // The store's Cluster subscriber (createSubscriberConnection) reports each failed connection to one
  // node as an error of the whole Cluster, which stays ready: logged per node below instead, rather than
  // as an outage that never ends. Told by the store, not read from the options: a Cluster client an
  // application hands in may have shardedSubscribers set, and its outages are logged as such.
  const perNodeOnly = shardedSubscriber && connection instanceof Cluster;
  const onError = (error: Error) => {
    if (state !== 'up' || perNodeOnly) return;
    state = 'down';
    logger.warn(`Redis ${role} connection failed (${error.message}); reconnecting.`);
  };
  const onReady = () => {
    if (state === 'down') logger.log(`Redis ${role} connection is back.`);
    state = 'up';
  };
  connection.on('error', onError);
  connection.on('ready', onReady);
  const stopWatchingNodes = connection instanceof Cluster ? watchClusterNodes(connection, role, logger) : () => {};
  return () => {
    connection.off('error', onError);
    connection.off('ready', onReady);
    stopWatchingNodes();
  };
}

/**
 * A Cluster stays ready while one of its nodes fails (its replica takes over): the node's failure is
 * logged once a minute at most, naming the node. Sharded subscribers name the event `nodeError`.
 */
function watchClusterNodes(cluster: Cluster, role: string, logger: StoreLogger): () => void {
  const lastLogged = new Map<string, number>();
  const onNodeError = (error: Error, node: string) => {
    const now = Date.now();
    if (now - (lastLogged.get(node) ?? -Infinity) < NODE_ERROR_LOG_INTERVAL_MS) return;
    lastLogged.set(node, now);
    logger.warn(`Redis Cluster node ${node} (${role} connection) failed: ${error.message}`);
  };
  cluster.on('node error', onNodeError);
  cluster.on('nodeError', onNodeError);
  return () => {
    cluster.off('node error', onNodeError);
    cluster.off('nodeError', onNodeError);
  };
}

/**
 * Connects (or waits for a connection under way). Resolves once it is ready; rejects at its first error
 * or after `timeoutMs`, while ioredis keeps reconnecting in the background.
 */
export async function connect(connection: RedisClient, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  await connectOne(connection, timeoutMs);
  // A Cluster is ready once it knows the slots; its masters' connections may still be under way.
  if (connection instanceof Cluster) {
    await Promise.all(connection.nodes('master').map((node) => connectOne(node, deadline - Date.now())));
  }
}

function connectOne(connection: RedisClient, timeoutMs: number): Promise<void> {
  if (connection.status === 'ready') return Promise.resolve();
  if (connection.status === 'end') return Promise.reject(new Error('the connection was closed'));
  return new Promise<void>((resolve, reject) => {
    const settle = (error?: Error) => {
      clearTimeout(timer);
      connection.off('ready', onReady);
      connection.off('error', onError);
      if (error) reject(error);
      else resolve();
    };
    const onReady = () => settle();
    const onError = (error: Error) => settle(error);
    const timer = setTimeout(() => settle(new Error(`not ready within ${timeoutMs} ms`)), timeoutMs);
    connection.once('ready', onReady);
    connection.once('error', onError);
    if (connection.status === 'wait') {
      // Its failure arrives as an 'error' event, handled above.
      connection.connect().catch(() => undefined);
    }
  });
}

/** QUIT when it can be sent (pending replies arrive first), else drop the socket. */
export async function closeConnection(connection: RedisClient): Promise<void> {
  if (connection.status === 'ready') {
    try {
      await connection.quit();
      return;
    } catch {
      // Lost while quitting: nothing left to wait for.
    }
  }
  connection.disconnect();
}

/** Replies that mean "Redis cannot serve this now" rather than "this command is wrong". */
const UNAVAILABLE_REPLIES = [
  'LOADING',
  'READONLY',
  'MASTERDOWN',
  'CLUSTERDOWN',
  'TRYAGAIN',
  'BUSY',
  'OOM',
  'NOREPLICAS',
];

/**
 * Failures after which Redis certainly did not run the command: refused before it was sent (no offline
 * queue while disconnected), or rejected by Redis before running it (loading, read-only replica, ...).
 * Anything else, a timeout above all, may have run: Redis still executes a command whose reply came
 * too late.
 */
export function neverRan(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'ReplyError') return UNAVAILABLE_REPLIES.some((code) => error.message.startsWith(code));
  return error.message.includes('enableOfflineQueue options is false');
}

/**
 * Failures of reaching Redis (refused, closed, timed out, no offline queue, failing over, out of memory),
 * as opposed to errors of a command. For the rejection of a Redis call only: everything ioredis rejects
 * with, except a command's error reply, is about the connection.
 */
export function isUnavailableError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name !== 'ReplyError') return true;
  return UNAVAILABLE_REPLIES.some((code) => error.message.startsWith(code));
}
