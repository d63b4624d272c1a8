import { parseArgs } from 'node:util';
import { JOB_STATUSES, type JobStatus } from '../job/index.js';
import { isClusterNode } from '../options/cluster-nodes.js';
import type { TerminalJobStatus } from '../store/job-store.js';
import { DEFAULT_KEY_PREFIX, StoreKeys } from '../store/redis/redis-keys.js';
import { maskUrlPassword } from '../store/redis/redis-url.js';

export const USAGE = `Usage: nestjs-async-endpoints <command> [options]

Operator commands for the Redis job store of nestjs-async-endpoints.

Commands:
  stats                           jobs per status, the age of the oldest waiting job, and per job name its
                                  waiting and running jobs and live workers (names without one flagged)
  list --status <status>          jobs in one status, newest first (--name, --limit default 50)
  retry <id>                      put a Failed or Canceled job back in the queue, with a fresh attempt budget
  retry --all-failed              the same for every Failed job, most recently failed first (--name, --limit)
  cancel <id>                     cancel a job; a running one is aborted by the worker running it
  recover                         take back now the jobs of dead or hung workers (expired leases)
  purge --status <status> --older-than <duration> (--dry-run | --yes)
                                  delete Completed, Failed or Canceled jobs finished before now - duration;
                                  --dry-run lists them, --yes deletes them (without either: lists them,
                                  deletes nothing and exits 1)
  migrate (--dry-run | --yes)     convert a store written by 0.1.0 to this version's layout, or move a
                                  store to another --partitions (stop every process on it first);
                                  --dry-run shows what it would do, --yes does it

Options:
  --redis-url <url>               redis:// or rediss:// URL (default: $REDIS_URL); the password may also
                                  come from $REDIS_PASSWORD
  --cluster-nodes <host:port,...> a Redis Cluster's seed nodes, instead of --redis-url (default:
                                  $REDIS_CLUSTER_NODES); the password from $REDIS_PASSWORD; every command
                                  but migrate
  --key-prefix <prefix>           the store's keyPrefix (default: ${DEFAULT_KEY_PREFIX})
  --json                          output as JSON
  --limit <n>                     list, retry --all-failed, purge: most jobs to handle
  --name <name>                   list, retry --all-failed, purge: only jobs of this name (endpoint)
  --max-in-progress <duration>    recover: also take back jobs InProgress longer than this, even with a
                                  live lease (default 60m, as recovery.jobTimeoutMinutes)
  --max-recoveries <n>            recover: take-backs before a job fails with JOB_RECOVERY_EXHAUSTED
                                  (default 2, as recovery.maximumRetries)
  --wait <duration>               recover: how long to wait while a running app's sweep holds the
                                  recovery lock (default 30s)
  --completed-retention <duration>
                                  cancel, recover: how long the Canceled jobs they make stay readable
                                  (default 1d, as retention.completedTtlSeconds)
  --failed-retention <duration>   recover: how long the Failed jobs it makes stay readable (default 7d)
  --partitions <n>                migrate: the store.partitions the apps will run with (default 1)
  --force                         migrate: even while 0.1.0 leases or workers of this version are live
  -h, --help                      show this help

Durations are a number and a unit: 500ms, 30s, 15m, 12h, 7d, 2w.
Statuses: ${JOB_STATUSES.join(', ')}.
Exit codes: 0 done, 1 failed (Redis unreachable, job not found or not in a fitting status), 2 bad usage.`;

/** A mistake in the command line: exit code 2, with the usage text. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** One Redis (`--redis-url`), or a Redis Cluster through its seed nodes (`--cluster-nodes`). */
export type RedisTarget = { type: 'url'; url: string } | { type: 'cluster'; nodes: readonly string[] };

export interface Connection {
  target: RedisTarget;
  /** From REDIS_PASSWORD; a password in the URL wins. */
  password: string | undefined;
  keyPrefix: string;
}

/** The Redis a connection goes to, for messages: its URL with the password masked, or the Cluster and its seed nodes. */
export function describeTarget(target: RedisTarget): string {
  return target.type === 'url' ? maskUrlPassword(target.url) : `the Redis Cluster at ${target.nodes.join(',')}`;
}

export type Command =
  | { name: 'stats' }
  | { name: 'list'; status: JobStatus; limit: number; jobName?: string }
  | { name: 'retry'; id: string }
  | { name: 'retry-all-failed'; limit: number; jobName?: string }
  | { name: 'cancel'; id: string; completedRetentionMs: number }
  | {
      name: 'recover';
      maxInProgressMs: number;
      maxRecoveries: number;
      waitMs: number;
      completedRetentionMs: number;
      failedRetentionMs: number;
    }
  | {
      name: 'purge';
      status: TerminalJobStatus;
      jobName?: string;
      olderThanMs: number;
      limit: number;
      /** `yes`: delete; `dry-run`: list only; `none`: list only, and fail saying how to confirm. */
      confirmation: 'yes' | 'dry-run' | 'none';
    }
  | {
      name: 'migrate';
      partitions: number;
      /** As purge's. */
      confirmation: 'yes' | 'dry-run' | 'none';
      /** Go on while 0.1.0 leases or layout-2 workers are live. */
      force: boolean;
    };

/** The commands that run on an open store (commands.ts); migrate runs on its own connection. */
export type StoreCommand = Exclude<Command, { name: 'migrate' }>;

export type ParsedArguments = { help: true } | { help: false; command: Command; connection: Connection; json: boolean };

const OPTIONS = {
  'redis-url': { type: 'string' },
  'cluster-nodes': { type: 'string' },
  'key-prefix': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  status: { type: 'string' },
  limit: { type: 'string' },
  name: { type: 'string' },
  'all-failed': { type: 'boolean' },
  'older-than': { type: 'string' },
  'max-in-progress': { type: 'string' },
  'max-recoveries': { type: 'string' },
  wait: { type: 'string' },
  'completed-retention': { type: 'string' },
  'failed-retention': { type: 'string' },
  'dry-run': { type: 'boolean' },
  yes: { type: 'boolean' },
  partitions: { type: 'string' },
  force: { type: 'boolean' },
} as const;

type OptionName = keyof typeof OPTIONS;
type Values = Partial<Record<OptionName, string | boolean>>;

const GLOBAL_OPTIONS: readonly OptionName[] = ['redis-url', 'cluster-nodes', 'key-prefix', 'json', 'help'];

/** The options each command takes besides the global ones. */
const COMMAND_OPTIONS: Readonly<Record<string, readonly OptionName[]>> = {
  stats: [],
  list: ['status', 'limit', 'name'],
  retry: ['all-failed', 'limit', 'name'],
  cancel: ['completed-retention'],
  recover: ['max-in-progress', 'max-recoveries', 'wait', 'completed-retention', 'failed-retention'],
  purge: ['status', 'older-than', 'limit', 'name', 'dry-run', 'yes'],
  migrate: ['partitions', 'dry-run', 'yes', 'force'],
};

const DEFAULT_LIST_LIMIT = 50;
const TERMINAL_STATUSES: readonly TerminalJobStatus[] = ['Completed', 'Failed', 'Canceled'];

/** Parses and checks the whole command line; every mistake is a UsageError naming it. */
export function parseArguments(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedArguments {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true }) as typeof parsed;
  } catch (error) {
    throw new UsageError(parseArgsMessage(error as Error));
  }
  const { values, positionals } = parsed;
  if (values.help) return { help: true };

  const [name, ...operands] = positionals;
  if (name === undefined) throw new UsageError('No command given.');
  const allowed = COMMAND_OPTIONS[name];
  if (!allowed)
    throw new UsageError(`Unknown command '${name}'. Commands: ${Object.keys(COMMAND_OPTIONS).join(', ')}.`);
  for (const option of Object.keys(values) as OptionName[]) {
    if (!GLOBAL_OPTIONS.includes(option) && !allowed.includes(option)) {
      throw new UsageError(`${name} does not take --${option}.`);
    }
  }
  const takesId = name === 'cancel' || (name === 'retry' && !values['all-failed']);
  if (!takesId && operands.length > 0) {
    throw new UsageError(
      name === 'retry'
        ? 'retry takes either a job id or --all-failed, not both.'
        : `${name} takes no arguments (got '${operands.join(' ')}').`,
    );
  }
  if (takesId && operands.length !== 1) {
    const wanted = name === 'retry' ? 'retry <id> or retry --all-failed' : 'cancel <id>';
    throw new UsageError(
      operands.length === 0
        ? `${name} needs a job id: ${wanted}.`
        : `${name} takes one job id, got ${operands.length}.`,
    );
  }

  const command = parseCommand(name, operands[0], values);
  const connection = parseConnection(values, env);
  if (command.name === 'migrate' && connection.target.type === 'cluster') {
    throw new UsageError(
      'migrate runs against a single Redis (--redis-url), not a Redis Cluster (--cluster-nodes or REDIS_CLUSTER_NODES): ' +
        'it cannot convert or re-partition a store on a Cluster. A 0.1.0 store is on a single Redis (0.1.0 supported no Cluster): ' +
        'run migrate there with --redis-url. A store on a Cluster keeps the partition count it was first started with: ' +
        'start every app with that store.partitions.',
    );
  }
  return { help: false, command, connection, json: values.json === true };
}

/** node:util's message, without its hints about `--` and `=`, which do not help here. */
function parseArgsMessage(error: Error): string {
  const option = /Option '(-[^' ]+)/.exec(error.message)?.[1];
  if (option && /argument (is ambiguous|missing)/.test(error.message)) return `${option} needs a value.`;
  return `${error.message.split(/\.\s/)[0]!.trimEnd().replace(/\.$/, '')}.`;
}

function parseCommand(name: string, id: string | undefined, values: Values): Command {
  const text = (option: OptionName) => values[option] as string | undefined;
  switch (name) {
    case 'stats':
      return { name };
    case 'list':
      return {
        name,
        status: parseStatus(required(name, 'status', text('status')), JOB_STATUSES),
        limit: parseCount('limit', text('limit'), DEFAULT_LIST_LIMIT, 1),
        ...jobName(text('name')),
      };
    case 'retry':
      return id === undefined
        ? {
            name: 'retry-all-failed',
            limit: parseCount('limit', text('limit'), Number.MAX_SAFE_INTEGER, 1),
            ...jobName(text('name')),
          }
        : { name, id: assertNotLimited(id, text('limit'), text('name')) };
    case 'cancel':
      return {
        name,
        id: id!,
        completedRetentionMs: parseDuration('completed-retention', text('completed-retention'), '1d'),
      };
    case 'recover':
      return {
        name,
        maxInProgressMs: parseDuration('max-in-progress', text('max-in-progress'), '60m'),
        maxRecoveries: parseCount('max-recoveries', text('max-recoveries'), 2, 0),
        waitMs: parseDuration('wait', text('wait'), '30s', true),
        completedRetentionMs: parseDuration('completed-retention', text('completed-retention'), '1d'),
        failedRetentionMs: parseDuration('failed-retention', text('failed-retention'), '7d'),
      };
    case 'purge':
      return {
        name,
        status: parseStatus(required(name, 'status', text('status')), TERMINAL_STATUSES),
        ...jobName(text('name')),
        olderThanMs: parseDuration('older-than', required(name, 'older-than', text('older-than')), undefined, true),
        limit: parseCount('limit', text('limit'), Number.MAX_SAFE_INTEGER, 1),
        confirmation: parseConfirmation(name, values),
      };
    case 'migrate':
      return {
        name,
        partitions: parseCount('partitions', text('partitions'), 1, 1),
        confirmation: parseConfirmation(name, values),
        force: values.force === true,
      };
    default:
      throw new UsageError(`Unknown command '${name}'.`);
  }
}

function parseConfirmation(command: string, values: Values): 'yes' | 'dry-run' | 'none' {
  if (values.yes && values['dry-run']) throw new UsageError(`${command} takes --dry-run or --yes, not both.`);
  return values.yes ? 'yes' : values['dry-run'] ? 'dry-run' : 'none';
}

function assertNotLimited(id: string, limit: string | undefined, name: string | undefined): string {
  if (limit !== undefined) throw new UsageError('retry <id> does not take --limit (retry --all-failed does).');
  if (name !== undefined) throw new UsageError('retry <id> does not take --name (retry --all-failed does).');
  return id;
}

function jobName(value: string | undefined): { jobName?: string } {
  if (value === undefined) return {};
  if (value.trim() === '') throw new UsageError('--name needs a job name, such as --name Process.');
  return { jobName: value };
}

function parseConnection(values: Values, env: NodeJS.ProcessEnv): Connection {
  const keyPrefix = (values['key-prefix'] as string | undefined) ?? DEFAULT_KEY_PREFIX;
  try {
    new StoreKeys(keyPrefix);
  } catch (error) {
    throw new UsageError(`--key-prefix: ${(error as Error).message}`);
  }
  return { target: parseTarget(values, env), password: env.REDIS_PASSWORD || undefined, keyPrefix };
}

/**
 * The option given, else the variable set: `--redis-url` or `$REDIS_URL` for one Redis, `--cluster-nodes`
 * or `$REDIS_CLUSTER_NODES` for a Cluster. Both options, or (without either) both variables, is a mistake.
 */
function parseTarget(values: Values, env: NodeJS.ProcessEnv): RedisTarget {
  const [urlOption, nodesOption] = [values['redis-url'], values['cluster-nodes']] as (string | undefined)[];
  if (urlOption !== undefined && nodesOption !== undefined) {
    throw new UsageError(
      '--redis-url and --cluster-nodes: give one of them (--redis-url for one Redis, --cluster-nodes for a Redis Cluster), not both.',
    );
  }
  if (urlOption !== undefined) return urlTarget(urlOption);
  if (nodesOption !== undefined) return clusterTarget('--cluster-nodes', nodesOption);
  if (env.REDIS_URL && env.REDIS_CLUSTER_NODES) {
    throw new UsageError(
      'REDIS_URL and REDIS_CLUSTER_NODES are both set: pass --redis-url <url> (one Redis) or --cluster-nodes <host:port,...> (a Redis Cluster) to choose.',
    );
  }
  if (env.REDIS_URL) return urlTarget(env.REDIS_URL);
  if (env.REDIS_CLUSTER_NODES) return clusterTarget('REDIS_CLUSTER_NODES', env.REDIS_CLUSTER_NODES);
  throw new UsageError(
    'No Redis to talk to: pass --redis-url <url> or set REDIS_URL (one Redis), or pass --cluster-nodes <host:port,...> or set REDIS_CLUSTER_NODES (a Redis Cluster).',
  );
}

function urlTarget(url: string): RedisTarget {
  if (!/^rediss?:\/\/./.test(url)) {
    throw new UsageError(`--redis-url '${maskUrlPassword(url)}' must start with redis:// or rediss://.`);
  }
  return { type: 'url', url };
}

/** `host:port,host:port,...`, as the sample reads REDIS_CLUSTER_NODES: spaces around the commas allowed. */
function clusterTarget(source: string, list: string): RedisTarget {
  const nodes = list
    .split(',')
    .map((node) => node.trim())
    .filter(Boolean);
  if (nodes.length === 0) {
    throw new UsageError(`${source} needs at least one seed node of the Redis Cluster, such as 10.0.0.1:7000.`);
  }
  // A URL would carry a password into every message that names the nodes.
  const url = nodes.find((node) => node.includes('://') || node.includes('@'));
  if (url !== undefined) {
    throw new UsageError(
      `${source}: '${maskUrlPassword(url)}' is a URL; give host:port, such as 10.0.0.1:7000, and the password in REDIS_PASSWORD.`,
    );
  }
  const wrong = nodes.find((node) => !isClusterNode(node));
  if (wrong !== undefined) {
    throw new UsageError(`${source}: '${wrong}' is not host:port (port 1-65535), such as 10.0.0.1:7000.`);
  }
  return { type: 'cluster', nodes };
}

function required(command: string, option: OptionName, value: string | undefined): string {
  if (value === undefined) throw new UsageError(`${command} needs --${option}.`);
  return value;
}

function parseStatus<T extends JobStatus>(value: string, allowed: readonly T[]): T {
  const status = allowed.find((candidate) => candidate.toLowerCase() === value.toLowerCase());
  if (!status) throw new UsageError(`--status '${value}' is not one of ${allowed.join(', ')}.`);
  return status;
}

function parseCount(option: OptionName, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const count = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(count) || count < min) {
    throw new UsageError(`--${option} '${value}' must be a whole number of at least ${min}.`);
  }
  return count;
}

const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** `7d`, `15m`, `500ms`, `1.5h`: a number and a unit, in milliseconds. */
export function parseDuration(option: string, value: string | undefined, fallback?: string, allowZero = false): number {
  const text = value ?? fallback!;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(text.trim());
  const ms = match ? Number(match[1]) * UNIT_MS[match[2]!]! : NaN;
  if (!Number.isFinite(ms) || ms > Number.MAX_SAFE_INTEGER || (ms === 0 && !allowZero)) {
    throw new UsageError(
      `--${option} '${text}' is not a duration: use a number and a unit (ms, s, m, h, d, w), for example 7d or 30m.`,
    );
  }
  return Math.round(ms);
}
