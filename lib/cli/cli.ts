import type { Redis } from 'ioredis';
import type { RedisJobStore } from '../store/redis/redis-job-store.js';
import { DEFAULT_KEY_PREFIX, layoutV1Keys, StoreKeys } from '../store/redis/redis-keys.js';
import { maskUrlPassword } from '../store/redis/redis-url.js';
import { parseArguments, USAGE, UsageError, type Connection } from './arguments.js';
import { CommandFailure, runCommand } from './commands.js';
import { escapeControlCharacters } from '../observability/log-text.js';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** How long the CLI waits for Redis before it gives up. */
const CONNECT_WAIT_MS = 3000;

/**
 * `nestjs-async-endpoints <command> [options]`: the operator commands, on the Redis store. Returns the
 * exit code: 0 done, 1 failed (one line on stderr), 2 bad usage (the usage text on stderr).
 */
export async function runCli(argv: readonly string[], terminal: CliIo): Promise<number> {
  // Everything printed passes here: stored text (handler errors, names) and arguments cannot reach the
  // terminal as control sequences.
  const io: CliIo = {
    env: terminal.env,
    stdout: (text) => terminal.stdout(escapeControlCharacters(text, true)),
    stderr: (text) => terminal.stderr(escapeControlCharacters(text, true)),
  };
  let parsed: ReturnType<typeof parseArguments>;
  try {
    parsed = parseArguments(argv, io.env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr(`Error: ${error.message}\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  if (parsed.help) {
    io.stdout(USAGE);
    return EXIT_OK;
  }

  const { command, connection, json } = parsed;
  let opened: OpenedStore | undefined;
  try {
    opened = await openStore(connection, io);
    await runCommand(command, { store: opened.store, json, print: io.stdout, warn: io.stderr });
    return EXIT_OK;
  } catch (error) {
    io.stderr(`Error: ${describeFailure(error)}`);
    return EXIT_FAILED;
  } finally {
    await opened?.close();
  }
}

interface OpenedStore {
  store: RedisJobStore;
  close(): Promise<void>;
}

/**
 * The store on a connection of the CLI's own, so that an unreachable Redis is one clear error
 * within a few seconds rather than the store's reconnecting.
 */
async function openStore(connection: Connection, io: CliIo): Promise<OpenedStore> {
  // Loaded here, so that --help and usage errors answer without loading ioredis and Nest.
  const [{ RedisJobStore }, { closeConnection, connect, createCommandConnection }] = await Promise.all([
    import('../store/redis/redis-job-store.js'),
    import('../store/redis/redis-connections.js'),
  ]);
  const client = createCommandConnection(
    connection.redisUrl,
    connection.password ? { password: connection.password } : {},
  );
  const store = new RedisJobStore({
    client,
    keyPrefix: connection.keyPrefix,
    logger: {
      log: () => undefined,
      warn: (message) => io.stderr(`Warning: ${String(message)}`),
      error: () => undefined,
    },
  });
  const close = async () => {
    await store.close();
    await closeConnection(client);
  };
  try {
    await connect(client, CONNECT_WAIT_MS);
  } catch (error) {
    await close();
    const reason = (error as Error).message;
    const hint = /^(NOAUTH|WRONGPASS)/.test(reason)
      ? ' (give the password in the URL, redis://:<password>@host:port, or in REDIS_PASSWORD)'
      : '';
    throw new CommandFailure(`Cannot connect to Redis at ${maskUrlPassword(connection.redisUrl)}: ${reason}${hint}`);
  }
  try {
    await store.init();
    await warnIfNothingUnderPrefix(client, connection, io);
  } catch (error) {
    await close();
    throw error;
  }
  return { store, close };
}

/**
 * A wrong --key-prefix reads as an empty store (zeros, exit 0): say so when none of the store's keys
 * exists. The submission counter stays once a job was ever stored, so a used store always has one.
 */
async function warnIfNothingUnderPrefix(
  client: Pick<Redis, 'exists'>,
  connection: Connection,
  io: CliIo,
): Promise<void> {
  const keys = new StoreKeys(connection.keyPrefix);
  if ((await client.exists(keys.partitions[0]!.sequence, ...layoutV1Keys(keys.prefix))) > 0) return;
  io.stderr(
    `Warning: nothing is stored under the key prefix '${connection.keyPrefix}' at ${maskUrlPassword(connection.redisUrl)}: ` +
      `no job was ever stored there. If that is unexpected, check --key-prefix: it must be the app's store.keyPrefix ` +
      `(default ${DEFAULT_KEY_PREFIX}).`,
  );
}

function describeFailure(error: unknown): string {
  if (error instanceof Error) return error.message.replace(/\s*\n\s*/g, ' ');
  return String(error);
}
