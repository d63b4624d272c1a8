import type { Redis } from 'ioredis';
import { maskUrlPassword } from '../store/redis/redis-url.js';
import type { Connection } from './arguments.js';
import { CommandFailure } from './commands.js';

/** How long the CLI waits for Redis before it gives up. */
const CONNECT_WAIT_MS = 3000;

/**
 * A connection of the CLI's own, connected, so that an unreachable Redis is one clear error within a
 * few seconds rather than a client reconnecting. `commandTimeout` replaces the store's (1.5 s) for
 * commands that carry batches. Close it with closeConnection.
 */
export async function openRedis(connection: Connection, commandTimeout?: number): Promise<Redis> {
  // Loaded here, so that --help and usage errors answer without loading ioredis.
  const { closeConnection, connect, createCommandConnection } = await import('../store/redis/redis-connections.js');
  const client = createCommandConnection(connection.redisUrl, {
    ...(connection.password ? { password: connection.password } : {}),
    ...(commandTimeout ? { commandTimeout } : {}),
  });
  try {
    await connect(client, CONNECT_WAIT_MS);
  } catch (error) {
    await closeConnection(client);
    const reason = (error as Error).message;
    const hint = /^(NOAUTH|WRONGPASS)/.test(reason)
      ? ' (give the password in the URL, redis://:<password>@host:port, or in REDIS_PASSWORD)'
      : '';
    throw new CommandFailure(`Cannot connect to Redis at ${maskUrlPassword(connection.redisUrl)}: ${reason}${hint}`);
  }
  return client;
}
