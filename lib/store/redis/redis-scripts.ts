import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Cluster } from 'ioredis';
import { slotOfKey } from './redis-partitions.js';
import type { RedisClient } from './redis-connections.js';

/**
 * One Lua script per state transition (and one each for stats, recovery and purge), in commands/.
 * A file's name ends with its key count when that is fixed; else its header gives the rule.
 */
const SCRIPT_FILES = {
  createJobs: 'createJobs.lua',
  claimJobs: 'claimJobs.lua',
  renewLeases: 'renewLeases.lua',
  reportProgress: 'reportProgress-1.lua',
  completeJobs: 'completeJobs.lua',
  failJob: 'failJob-9.lua',
  releaseJob: 'releaseJob-8.lua',
  cancelJob: 'cancelJob-6.lua',
  recoverJobs: 'recoverJobs.lua',
  jobStats: 'jobStats.lua',
  retryJob: 'retryJob-9.lua',
  purgeJobs: 'purgeJobs.lua',
} as const;

export type ScriptName = keyof typeof SCRIPT_FILES;

/** The key count in a script file's name (`failJob-9.lua`), for the scripts whose count is fixed. */
export const FIXED_KEY_COUNTS: Readonly<Partial<Record<ScriptName, number>>> = Object.fromEntries(
  Object.entries(SCRIPT_FILES)
    .map(([name, file]) => [name, /-(\d+)\.lua$/.exec(file)?.[1]] as const)
    .filter((entry): entry is readonly [string, string] => entry[1] !== undefined)
    .map(([name, count]) => [name, Number(count)]),
);

/** The script files, by script: for the tests that read them. */
export function scriptFiles(): Readonly<Record<ScriptName, string>> {
  return SCRIPT_FILES;
}

/**
 * Scripts Redis runs even when it is out of memory (`maxmemory` reached under `noeviction`): those that
 * drain the queue, finish jobs or free memory, so that workers keep working while submits are refused.
 * Without the flag, Redis refuses any script that declares `#!lua` once memory is full. Left out: the
 * ones that add data (createJobs, retryJob, reportProgress).
 */
const ALLOW_OOM: ReadonlySet<ScriptName> = new Set<ScriptName>([
  'claimJobs',
  'renewLeases',
  'completeJobs',
  'failJob',
  'releaseJob',
  'cancelJob',
  'recoverJobs',
  'jobStats',
  'purgeJobs',
]);
export type ScriptArg = string | number;

type ScriptCommand = (numberOfKeys: string, ...keysAndArgs: string[]) => Promise<unknown>;

const COMMANDS_DIR = new URL('commands/', import.meta.url);

/** `--- @include "name"`: the whole line, which pulls in commands/includes/<name>.lua. */
const INCLUDE_LINE = /^--- @include "([\w-]+)"[ \t]*$/gm;

/** Reads a file of the scripts' folder, relative to it. */
export type LuaReader = (path: string) => string;

/**
 * A script with its includes resolved: each `--- @include "name"` line is replaced by
 * includes/<name>.lua (itself resolved first), except where that file was already pulled in, directly or
 * through another include: each file's locals are defined once. An include cycle, or a missing include,
 * is an error naming the files.
 */
export function resolveIncludes(file: string, read: LuaReader): string {
  const included = new Set<string>();
  const expand = (path: string, chain: readonly string[]): string => {
    const source = read(path);
    return source.replace(INCLUDE_LINE, (_line, name: string) => {
      const target = `includes/${name}.lua`;
      if (chain.includes(target)) {
        throw new Error(`Lua include cycle: ${[...chain, target].join(' -> ')}`);
      }
      if (included.has(target)) return `-- (${name}: included above)`;
      included.add(target);
      let text: string;
      try {
        text = expand(target, [...chain, target]);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        throw new Error(`${path} includes "${name}", but there is no ${target} in the Lua scripts' folder.`);
      }
      return text.replace(/\n$/, '');
    });
  };
  return expand(file, [file]);
}

function readLua(path: string): string {
  return readFileSync(new URL(path, COMMANDS_DIR), 'utf8');
}

let sources: ReadonlyMap<ScriptName, string> | undefined;

/**
 * Each script is `#!lua` (with `flags=allow-oom` for those in ALLOW_OOM), then its source with its
 * includes. The shebang (Redis >= 7) leaves the compatibility mode in which Redis Cluster lets a script
 * reach keys of any slot: with it, a key outside the slot of the declared keys fails the script instead
 * of silently working on one node only.
 */
export function scriptSources(): ReadonlyMap<ScriptName, string> {
  if (!sources) {
    sources = new Map(
      (Object.entries(SCRIPT_FILES) as [ScriptName, string][]).map(([name, file]) => {
        let body: string;
        try {
          body = resolveIncludes(file, readLua);
        } catch (error) {
          throw new Error(
            `Redis job store script ${file} cannot be loaded (${(error as Error).message}); the build copies lib/**/*.lua next to the compiled files.`,
          );
        }
        return [name, `${ALLOW_OOM.has(name) ? '#!lua flags=allow-oom' : '#!lua'}\n${body}`];
      }),
    );
  }
  return sources;
}

/** The first line of the source of a script that touches keys it does not declare (the claim's job hashes), after `#!lua`. */
const UNDECLARED_KEYS_FLAG = '--!df flags=allow-undeclared-keys';

/**
 * The SHA1s of the scripts that claim (claimJobs, and completeJobs, on which a claim may ride), as the
 * server caches them. Dragonfly forbids undeclared keys unless a script is flagged; their `--!df` line
 * does it in the source, and `SCRIPT FLAGS <sha>` (sent at startup on Dragonfly) does it whatever line
 * Dragonfly reads the flag from.
 */
export function undeclaredKeysScriptShas(): string[] {
  return [...scriptSources().values()]
    .filter((source) => source.split('\n')[1] === UNDECLARED_KEYS_FLAG)
    .map((source) => createHash('sha1').update(source).digest('hex'));
}

/** Named so that it cannot clash with commands of an application that shares its client with us. */
function commandName(name: ScriptName): string {
  return `asyncEndpoints${name[0]!.toUpperCase()}${name.slice(1)}V2`;
}

/**
 * The store's scripts as ioredis custom commands. ioredis sends EVALSHA, and EVAL when the script is
 * not cached on the server yet (a new connection, or a Redis that restarted empty and answers NOSCRIPT),
 * so scripts come back by themselves after a restart. A Cluster client sends each to the node of its
 * first key: every script's keys lie in one partition, so in one slot.
 */
export class RedisScripts {
  constructor(private readonly client: RedisClient) {
    for (const [name, lua] of scriptSources()) client.defineCommand(commandName(name), { lua });
  }

  run(name: ScriptName, keys: readonly string[], args: readonly ScriptArg[]): Promise<unknown> {
    const fixed = FIXED_KEY_COUNTS[name];
    if (fixed !== undefined && keys.length !== fixed) {
      // A programming error of the store: the script would read keys it was not given, or ignore some.
      return Promise.reject(
        new Error(`Redis job store: script ${SCRIPT_FILES[name]} takes ${fixed} keys, and was given ${keys.length}.`),
      );
    }
    const command = (this.client as unknown as Record<string, ScriptCommand>)[commandName(name)]!;
    // All strings: ioredis builds a command from an array of only strings about twice as fast as from
    // one that mixes in numbers (measured: ~4 µs instead of ~8 µs for a 38-argument create-job).
    return command.call(this.client, String(keys.length), ...keys, ...args.map(String));
  }

  /**
   * Runs a script, then SPUBLISHes each message on `channel` (a shard channel in the slot of the
   * script's keys), in one write (one round trip). Redis sends the subscribers' messages before the
   * script's reply this way (a publish inside the script would go out after it): a worker hears of a new
   * job before the submitting process reads its answer, which matters most when both share a process.
   * The socket is corked around the commands, which ioredis writes at once when connected: a pipeline
   * would do the same at about twice the client CPU. A Cluster client sends the SPUBLISH by its channel,
   * so to the script's node, whose connection is corked the same way. Resolves to the script's reply, or rejects with its error; the publishes'
   * own outcomes are not waited for.
   */
  runThenPublish(
    name: ScriptName,
    keys: readonly string[],
    args: readonly ScriptArg[],
    channel: string,
    messages: readonly string[],
  ): Promise<unknown> {
    const stream = socketFor(this.client, keys[0]!);
    stream?.cork?.();
    try {
      const reply = this.run(name, keys, args);
      // Their failure is the script's failure too (same connection), reported by the script's promise.
      for (const message of messages) this.client.spublish(channel, message).catch(() => undefined);
      return reply;
    } finally {
      stream?.uncork?.();
    }
  }
}

type Corkable = { cork?: () => void; uncork?: () => void };

/**
 * The socket a command on `key` is written to: the client's own, or on a Cluster the connection of the
 * master that serves the key's slot, as the client's slot map says. Undefined when that is not known
 * (no slot map yet, a master not connected): the commands are then written as they come, one write each.
 */
function socketFor(client: RedisClient, key: string): Corkable | undefined {
  if (!(client instanceof Cluster)) return client.stream as Corkable | undefined;
  const master = client.slots[slotOfKey(key)]?.[0];
  if (master === undefined) return undefined;
  const node = client.nodes('master').find(({ options }) => `${options.host}:${options.port}` === master);
  return node?.stream as Corkable | undefined;
}
