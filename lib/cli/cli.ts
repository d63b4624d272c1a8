import type { Redis } from 'ioredis';
import type { RedisJobStore } from '../store/redis/redis-job-store.js';
import { DEFAULT_KEY_PREFIX, layoutV1Keys, StoreKeys } from '../store/redis/redis-keys.js';
import { maskUrlPassword } from '../store/redis/redis-url.js';
import { parseArguments, USAGE, UsageError, type Connection } from './arguments.js';
import { runCommand } from './commands.js';
import { migrate } from './migrate-command.js';
import { openRedis } from './redis-connection.js';
import { escapeControlCharacters } from '../observability/log-text.js';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

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
    if (command.name === 'migrate') {
      // Not through the store: a store of this version refuses to start on 0.1.0's layout.
      await migrate(command, connection, { json, print: io.stdout });
      return EXIT_OK;
    }
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

/** The store on a connection of the CLI's own (openRedis). */
async function openStore(connection: Connection, io: CliIo): Promise<OpenedStore> {
  // Loaded here, so that --help and usage errors answer without loading ioredis and Nest.
  const [{ RedisJobStore }, { closeConnection }] = await Promise.all([
    import('../store/redis/redis-job-store.js'),
    import('../store/redis/redis-connections.js'),
  ]);
  const client = await openRedis(connection);
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
