import { readdirSync, readFileSync } from 'node:fs';
import { commonFor } from '../../lib/store/redis/redis-scripts.js';

const common = `local WAITING = KEYS[1]

-- The index of a status.
local function statusIndex(status)
  if status == 'Queued' then return 1 end
  return nil
end

local function isReadable(job)
  return statusIndex(job.status) ~= nil
end

local function readJob(key)
  local job = {}
  if not isReadable(job) then return nil end
  return job
end

local function startLease(key)
  redis.call('HSET', key, 'status', 'InProgress')
end
`;

const functionsIn = (source: string) => [...source.matchAll(/^local function (\w+)/gm)].map((match) => match[1]);

describe('the shared Lua each script gets (commonFor)', () => {
  it('keeps the functions the script calls and those they call, in their order, and drops the rest', () => {
    const linked = commonFor(common, 'local job = readJob(KEYS[14])\nreturn job');
    expect(functionsIn(linked)).toEqual(['statusIndex', 'isReadable', 'readJob']);
    expect(linked).toContain('local WAITING = KEYS[1]');
    expect(linked).toContain('-- (startLease: not used here)');
  });

  it('keeps nothing for a script that calls no shared function, and everything for one that calls all', () => {
    expect(functionsIn(commonFor(common, 'return 1'))).toEqual([]);
    expect(functionsIn(commonFor(common, 'startLease(KEYS[14]); return readJob(KEYS[14])'))).toHaveLength(4);
  });

  it('does not take a longer name for a shorter one', () => {
    expect(functionsIn(commonFor(common, 'local readJobs = 1\nreturn readJobs'))).toEqual([]);
  });

  it('refuses a shared function that does not close with an end alone on its line', () => {
    expect(() => commonFor(`${common}\nlocal function oneLine() return 1 end\n`, 'return oneLine()')).toThrow(
      'every top-level `local function` must close',
    );
  });
});

describe('the shared Lua of the real scripts', () => {
  const dir = new URL('../../lib/store/redis/', import.meta.url);
  const read = (file: string) => readFileSync(new URL(file, dir), 'utf8');
  const withoutComments = (lua: string) => lua.replace(/--.*$/gm, '');
  const common = read('common.lua');
  const shared = functionsIn(common) as string[];
  const scripts = readdirSync(dir).filter((file) => file.endsWith('.lua') && file !== 'common.lua');

  it('finds every script and every shared function', () => {
    expect(scripts.length).toBeGreaterThanOrEqual(13);
    expect(shared.length).toBeGreaterThanOrEqual(15);
  });

  it.each(scripts)('%s: every shared function it calls, directly or not, is defined before its body', (file) => {
    const linked = withoutComments(`${commonFor(common, read(file))}\n${read(file)}`);
    const defined = new Set(functionsIn(linked));
    for (const name of shared) {
      if (new RegExp(`\\b${name}\\s*\\(`).test(linked.replace(new RegExp(`local function ${name}\\(`, 'g'), ''))) {
        expect({ file, name, defined: defined.has(name) }).toEqual({ file, name, defined: true });
      }
    }
  });
});
