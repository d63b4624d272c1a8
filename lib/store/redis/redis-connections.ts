import type { LoggerService } from '@nestjs/common';
import { Redis, type RedisOptions } from 'ioredis';

export type StoreLogger = Pick<LoggerService, 'log' | 'warn' | 'error'>;

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
 * The pub/sub connection: it waits for Redis and reconnects rather than failing, and ioredis subscribes
 * it to its channels again after every reconnect (and resends a SUBSCRIBE the outage cut short). It
 * connects on the first subscription.
 */
export function createSubscriberConnection(commands: Redis): Redis {
  return commands.duplicate({
    lazyConnect: true,
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
    autoResubscribe: true,
    autoResendUnfulfilledCommands: true,
    commandTimeout: undefined,
  });
}

/**
 * Logs each outage of a connection once, and its end. Failures before the first connection are left to
 * the store's init() to report. The 'error' listener is also what keeps ioredis' error events (one per
 * failed reconnect) from crashing the process. Returns the function that stops watching.
 */
export function watchConnection(connection: Redis, role: string, logger: StoreLogger): () => void {
  let state: 'new' | 'up' | 'down' = connection.status === 'ready' ? 'up' : 'new';
  const onError = (error: Error) => {
    if (state !== 'up') return;
    state = 'down';
    logger.warn(`Redis ${role} connection failed (${error.message}); reconnecting.`);
  };
  const onReady = () => {
    if (state === 'down') logger.log(`Redis ${role} connection is back.`);
    state = 'up';
  };
  connection.on('error', onError);
  connection.on('ready', onReady);
  return () => {
    connection.off('error', onError);
    connection.off('ready', onReady);
  };
}

/**
 * Connects (or waits for a connection under way). Resolves once it is ready; rejects at its first error
 * or after `timeoutMs`, while ioredis keeps reconnecting in the background.
 */
export function connect(connection: Redis, timeoutMs: number): Promise<void> {
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
export async function closeConnection(connection: Redis): Promise<void> {
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
