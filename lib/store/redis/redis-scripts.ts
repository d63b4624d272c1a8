import { readFileSync } from 'node:fs';
import type { RedisClient } from './redis-connections.js';

/** One Lua script per state transition (and one each for stats and listing), beside this file. */
const SCRIPT_FILES = {
  createJob: 'create-job.lua',
  claimDueJobs: 'claim-due-jobs.lua',
  renewLeases: 'renew-leases.lua',
  reportProgress: 'report-progress.lua',
  completeJob: 'complete-job.lua',
  failJob: 'fail-job.lua',
  releaseJob: 'release-job.lua',
  cancelJob: 'cancel-job.lua',
  recoverJobs: 'recover-jobs.lua',
  jobStats: 'job-stats.lua',
  listJobs: 'list-jobs.lua',
  retryJob: 'retry-job.lua',
  purgeJobs: 'purge-jobs.lua',
} as const;

export type ScriptName = keyof typeof SCRIPT_FILES;

/**
 * Scripts Redis runs even when it is out of memory (`maxmemory` reached under `noeviction`): those that
 * drain the queue, finish jobs or free memory, so that workers keep working while submits are refused.
 * Without the flag, Redis refuses any script that declares `#!lua` once memory is full. Left out: the
 * ones that add data (createJob, retryJob, reportProgress).
 */
const ALLOW_OOM: ReadonlySet<ScriptName> = new Set<ScriptName>([
  'claimDueJobs',
  'renewLeases',
  'completeJob',
  'failJob',
  'releaseJob',
  'cancelJob',
  'recoverJobs',
  'jobStats',
  'listJobs',
  'purgeJobs',
]);
export type ScriptArg = string | number;

type ScriptCommand = (numberOfKeys: string, ...keysAndArgs: string[]) => Promise<unknown>;

let sources: ReadonlyMap<ScriptName, string> | undefined;

/**
 * Each script is `#!lua` (with `flags=allow-oom` for those in ALLOW_OOM), then common.lua, then its own
 * body. The shebang (Redis >= 7) leaves the compatibility mode in which Redis Cluster lets a script reach
 * keys of any slot: with it, a key outside the slot of the declared keys fails the script instead of
 * silently working on one node only.
 */
function scriptSources(): ReadonlyMap<ScriptName, string> {
  if (!sources) {
    const common = readLua('common.lua');
    sources = new Map(
      (Object.entries(SCRIPT_FILES) as [ScriptName, string][]).map(([name, file]) => {
        const body = readLua(file);
        return [name, `${shebang(name)}\n${commonFor(common, body)}\n${body}`];
      }),
    );
  }
  return sources;
}

function shebang(name: ScriptName): string {
  return ALLOW_OOM.has(name) ? '#!lua flags=allow-oom' : '#!lua';
}

/** A top-level `local function` of common.lua: from its first line to the `end` at column 0. */
const FUNCTION_BLOCK = /^local function (\w+)\(.*?^end$/gms;

/**
 * common.lua without the functions `body` does not use, directly or through the functions it keeps.
 * Each `local function` runs on every call of the script (it makes a closure): defining all of them
 * cost every call about 5 µs on an idle Redis. Everything else in common.lua stays as it is.
 */
export function commonFor(common: string, body: string): string {
  const blocks = [...common.matchAll(FUNCTION_BLOCK)].map((match) => ({ name: match[1]!, text: match[0] }));
  const declared = common.match(/^local function /gm)?.length ?? 0;
  if (blocks.some((block) => block.text.match(/^local function /gm)!.length !== 1) || blocks.length !== declared) {
    throw new Error('common.lua: every top-level `local function` must close with an `end` alone on its line');
  }
  const uses = (text: string, name: string) => new RegExp(`\\b${name}\\b`).test(text);
  const kept = new Set(blocks.filter((block) => uses(body, block.name)).map((block) => block.name));
  for (let grew = true; grew;) {
    grew = false;
    for (const block of blocks) {
      if (kept.has(block.name)) continue;
      if (blocks.some((user) => kept.has(user.name) && uses(user.text, block.name))) {
        kept.add(block.name);
        grew = true;
      }
    }
  }
  return common.replace(FUNCTION_BLOCK, (text, name: string) =>
    kept.has(name) ? text : `-- (${name}: not used here)`,
  );
}

function readLua(file: string): string {
  const url = new URL(file, import.meta.url);
  try {
    return readFileSync(url, 'utf8');
  } catch (error) {
    throw new Error(
      `Redis job store script ${url.pathname} cannot be read (${(error as Error).message}); the build copies lib/**/*.lua next to the compiled files.`,
    );
  }
}

/** Named so that it cannot clash with commands of an application that shares its client with us. */
function commandName(name: ScriptName): string {
  return `asyncEndpoints${name[0]!.toUpperCase()}${name.slice(1)}`;
}

/**
 * The store's scripts as ioredis custom commands. ioredis sends EVALSHA, and EVAL when the script is
 * not cached on the server yet (a new connection, or a Redis that restarted empty and answers NOSCRIPT),
 * so scripts come back by themselves after a restart.
 */
export class RedisScripts {
  constructor(private readonly client: RedisClient) {
    for (const [name, lua] of scriptSources()) client.defineCommand(commandName(name), { lua });
  }

  run(name: ScriptName, keys: readonly string[], args: readonly ScriptArg[]): Promise<unknown> {
    const command = (this.client as unknown as Record<string, ScriptCommand>)[commandName(name)]!;
    // All strings: ioredis builds a command from an array of only strings about twice as fast as from
    // one that mixes in numbers (measured: ~4 µs instead of ~8 µs for a 38-argument create-job).
    return command.call(this.client, String(keys.length), ...keys, ...args.map(String));
  }

  /**
   * Runs a script, then PUBLISHes, in one write (one round trip). Redis sends the subscribers' message
   * before the script's reply this way (a PUBLISH inside the script would go out after it): a worker
   * hears of a new job before the submitting process reads its answer, which matters most when both
   * share a process. The socket is corked around the two commands, which ioredis writes at once when
   * connected: a pipeline would do the same at about twice the client CPU. Resolves to the
   * script's reply, or rejects with its error; the PUBLISH's own outcome is not waited for.
   */
  runThenPublish(
    name: ScriptName,
    keys: readonly string[],
    args: readonly ScriptArg[],
    channel: string,
    message: string,
  ): Promise<unknown> {
    // A Cluster has no one socket: its calls are written as they come.
    const stream = ('stream' in this.client ? this.client.stream : undefined) as { cork?: () => void; uncork?: () => void } | undefined;
    stream?.cork?.();
    try {
      const reply = this.run(name, keys, args);
      // Its failure is the script's failure too (same connection), reported by the script's promise.
      this.client.publish(channel, message).catch(() => undefined);
      return reply;
    } finally {
      stream?.uncork?.();
    }
  }
}
