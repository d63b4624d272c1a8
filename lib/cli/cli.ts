import type { RedisClient } from '../store/redis/redis-connections.js';
import type { RedisJobStore } from '../store/redis/redis-job-store.js';
import { DEFAULT_KEY_PREFIX, layoutV1Keys, StoreKeys } from '../store/redis/redis-keys.js';
import { describeTarget, parseArguments, USAGE, UsageError, type Command, type Connection } from './arguments.js';
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
    io.stderr(`Error: ${describeFailure(error)}${clusterHint(error, command, connection)}`);
    return EXIT_FAILED;
  } finally {
    await opened?.close();
  }
}

interface OpenedStore {
  store: RedisJobStore;
  close(): Promise<void>;
}

/** The store on a connection of the CLI's own (openRedis): one Redis, or a Redis Cluster. */
async function openStore(connection: Connection, io: CliIo): Promise<OpenedStore> {
  // Loaded here, so that --help and usage errors answer without loading ioredis and Nest.
  const [{ RedisJobStore }, { closeConnection }, { recordedPartitions }, { defaultPartitions }] = await Promise.all([
    import('../store/redis/redis-job-store.js'),
    import('../store/redis/redis-connections.js'),
    import('../store/redis/redis-layout.js'),
    import('../options/redis-store-options.js'),
  ]);
  const client = await openRedis(connection);
  let partitions: number;
  try {
    // The store as the apps wrote it: with the partition count they recorded, else the one a store on
    // this connection starts with (1 on one Redis, 12 on a Cluster).
    partitions = (await recordedPartitions(client, connection.keyPrefix)) ?? defaultPartitions({ client });
  } catch (error) {
    await closeConnection(client);
    throw error;
  }
  const store = new RedisJobStore({
    client,
    keyPrefix: connection.keyPrefix,
    partitions,
    // Reading or changing jobs must not choose the partition count of a prefix where no app started yet.
    recordLayout: false,
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
    if (await nothingStored(client, connection.keyPrefix, partitions)) warnNothingUnderPrefix(connection, io);
  } catch (error) {
    await close();
    throw error;
  }
  return { store, close };
}

/**
 * Whether no job was ever stored under the prefix: no partition has a status index or a submission
 * counter (one EXISTS per partition: one slot each), and there are no 0.1.0 keys.
 */
async function nothingStored(
  client: Pick<RedisClient, 'exists'>,
  keyPrefix: string,
  partitions: number,
): Promise<boolean> {
  const keys = new StoreKeys(keyPrefix, partitions);
  const found = await Promise.all([
    client.exists(...layoutV1Keys(keys.prefix)),
    ...keys.partitions.map((partition) => client.exists(partition.sequence, ...Object.values(partition.statusIndex))),
  ]);
  return found.every((count) => count === 0);
}

/** A wrong --key-prefix reads as an empty store (zeros, exit 0): say so when no store ever started there. */
function warnNothingUnderPrefix({ keyPrefix, target }: Connection, io: CliIo): void {
  io.stderr(
    `Warning: nothing is stored under the key prefix '${keyPrefix}' ${target.type === 'url' ? 'at' : 'on'} ${describeTarget(target)}: ` +
      `no job was ever stored there. If that is unexpected, check --key-prefix: it must be the app's store.keyPrefix ` +
      `(default ${DEFAULT_KEY_PREFIX}).`,
  );
}

/** A node of a Redis Cluster reached through --redis-url answers MOVED for the keys of other nodes' slots. */
function clusterHint(error: unknown, command: Command, { target }: Connection): string {
  if (target.type !== 'url' || !(error instanceof Error) || !/^MOVED /.test(error.message)) return '';
  return command.name === 'migrate'
    ? ' (this Redis is a node of a Redis Cluster: migrate runs against a single Redis only)'
    : " (this Redis is a node of a Redis Cluster: pass the Cluster's nodes with --cluster-nodes host:port,... instead of --redis-url)";
}

function describeFailure(error: unknown): string {
  if (error instanceof Error) return error.message.replace(/\s*\n\s*/g, ' ');
  return String(error);
}
