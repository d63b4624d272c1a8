import { readdirSync, readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { RedisJobStore } from '../../lib/store/redis/redis-job-store.js';
import { describeJobStoreConformance } from '../store-conformance/job-store.conformance.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { RedisServer } from '../support/redis-server.js';
import { idsInOnePartition } from '../support/test-stores.js';

/**
 * Every key a script touches is declared in its KEYS (servers such as Dragonfly, and Redis Cluster
 * proxies, refuse the others), except the job hashes the claim pops (docs/storage.md). Redis 7 does not
 * enforce that, so MONITOR records every command each script ran, COMMAND GETKEYS names the keys of
 * each, and they are compared with the script's KEYS, over the whole conformance suite with 1 and with
 * 4 partitions.
 */
const COMMANDS = new URL('../../lib/store/redis/commands/', import.meta.url);
/** Where the claim builds job keys, and the scripts that include it (a claim may ride on completions). */
const CLAIM_INCLUDE = 'includes/claim-due.lua';
const CLAIMING_SCRIPTS = ['claimJobs.lua', 'completeJobs.lua'];

describe('the Lua scripts, read as text', () => {
  const files = [
    ...readdirSync(COMMANDS).filter((file) => file.endsWith('.lua')),
    ...readdirSync(new URL('includes/', COMMANDS)).map((file) => `includes/${file}`),
  ];
  const sources = files.map((file) => ({ file, text: readFileSync(new URL(file, COMMANDS), 'utf8') }));

  it('build key names only in the claim, which says why, and every script that includes it carries the Dragonfly flag', () => {
    const building = sources.filter(({ text }) => /:job:|'job:'|jobPrefix/.test(text.replace(/--.*$/gm, '')));
    expect(building.map(({ file }) => file)).toEqual([CLAIM_INCLUDE]);
    expect(sources.find(({ file }) => file === CLAIM_INCLUDE)!.text).toContain(
      'The one place that touches keys the script does not declare',
    );
    const including = sources.filter(({ text }) => text.includes('--- @include "claim-due"'));
    expect(including.map(({ file }) => file).sort()).toEqual(CLAIMING_SCRIPTS);
    for (const { text } of including) expect(text.split('\n')[0]).toBe('--!df flags=allow-undeclared-keys');
  });

  it('name every key of a Redis command by a variable, never by a string or a concatenation', () => {
    const built = sources.flatMap(({ file, text }) =>
      [...text.matchAll(/redis\.p?call\('(\w+)', ([^,)]+)/g)]
        .filter(([, command, key]) => command !== 'SPUBLISH' && /['"]|\.\./.test(key!))
        .map(([call]) => `${file}: ${call}`),
    );
    expect(built).toEqual([]);
  });
});

let server: RedisServer;
let admin: Redis;
let monitor: Redis;
/** Each script call seen: its declared keys, and the commands it ran. */
const calls: { keys: Set<string>; commands: string[][] }[] = [];
let stores = 0;

beforeAll(async () => {
  server = await RedisServer.start();
  admin = new Redis(server.url);
  monitor = await admin.monitor();
  // MONITOR shows a script's EVAL or EVALSHA, then each command it runs, with the source 'lua'.
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    const command = args[0]!.toLowerCase();
    if (source === 'lua') calls.at(-1)?.commands.push(args);
    else if (command === 'evalsha' || command === 'eval') {
      calls.push({ keys: new Set(args.slice(3, 3 + Number(args[2]))), commands: [] });
    }
  });
});

afterAll(async () => {
  monitor?.disconnect();
  await admin?.quit();
  await server?.dispose();
});

async function keysOf(command: string[]): Promise<string[]> {
  try {
    return (await admin.call('COMMAND', 'GETKEYS', ...command)) as string[];
  } catch (error) {
    if ((error as Error).message.includes('no key arguments')) return [];
    throw error;
  }
}

/** Each undeclared key a script call touched, with the command, and whether the call was a claim. */
async function undeclaredKeys(): Promise<{ claim: string[]; other: string[] }> {
  // Everything sent so far shows in MONITOR before this ECHO does.
  const marker = `end-${Date.now()}`;
  const seen = new Promise<void>((resolve) => {
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[1] === marker) resolve();
    });
  });
  await admin.echo(marker);
  await seen;
  const found = { claim: [] as string[], other: [] as string[] };
  for (const call of calls) {
    // A claim's undeclared keys must be hashes of jobs it popped: every entry it looks at leaves a
    // declared waiting zset, by a ZREM of its `<seq>:<id>` entries.
    const popped = new Set(
      call.commands
        .filter(
          ([command, key]) => command!.toLowerCase() === 'zrem' && call.keys.has(key!) && key!.includes(':waiting:'),
        )
        .flatMap(([, , ...entries]) => entries.map((entry) => entry.slice(entry.indexOf(':') + 1))),
    );
    // A claim (claimJobs, or one riding on completeJobs) declares its partition's `started` key and
    // the waiting keys of the names it claims.
    const started = [...call.keys].find((key) => key.endsWith(':started')) ?? '';
    const isClaim = started !== '' && [...call.keys].some((key) => key.includes(':waiting:'));
    for (const command of call.commands) {
      for (const key of await keysOf(command)) {
        if (call.keys.has(key)) continue;
        const jobPrefix = `${started.slice(0, -'started'.length)}job:`;
        const isPoppedJob = key.startsWith(jobPrefix) && popped.has(key.slice(jobPrefix.length));
        if (isClaim && isPoppedJob) found.claim.push(key);
        else found.other.push(`${command.join(' ').slice(0, 120)} -> ${key}`);
      }
    }
  }
  return found;
}

function openStore(partitions: number): Promise<RedisJobStore> {
  const store = new RedisJobStore({
    url: server.url,
    keyPrefix: `{ae-declared-${++stores}}`,
    partitions,
    logger: new RecordingLogger(),
  });
  return store.init().then(() => store);
}

describeJobStoreConformance('redis, every script watched for undeclared keys', {
  create: () => openStore(1),
  destroy: (store) => store.close(),
});

describeJobStoreConformance('redis with 4 partitions, every script watched for undeclared keys', {
  create: () => openStore(4),
  destroy: (store) => store.close(),
  idsInOnePartition: (count) => idsInOnePartition(4, count),
});

describe('every script call seen', () => {
  it('touched only keys it declared, but for the claim, which touched only the hashes of the jobs it popped', async () => {
    expect(calls.length).toBeGreaterThan(600);
    const { claim, other } = await undeclaredKeys();
    expect(other).toEqual([]);
    expect(claim.length).toBeGreaterThan(100);
  });
});
