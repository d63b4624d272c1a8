import {
  FIXED_KEY_COUNTS,
  RedisScripts,
  resolveIncludes,
  scriptFiles,
  scriptSources,
} from '../../lib/store/redis/redis-scripts.js';

/** A folder of Lua files in memory; a missing file fails as readFileSync does. */
function reader(files: Record<string, string>) {
  return (path: string) => {
    const text = files[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return text;
  };
}

describe('the Lua include loader (resolveIncludes)', () => {
  it('replaces each include line by the file, its own includes first', () => {
    const read = reader({
      'main.lua': '--- @include "b"\nreturn b()\n',
      'includes/a.lua': 'local function a() return 1 end\n',
      'includes/b.lua': '--- @include "a"\nlocal function b() return a() end\n',
    });
    expect(resolveIncludes('main.lua', read)).toBe(
      'local function a() return 1 end\nlocal function b() return a() end\nreturn b()\n',
    );
  });

  it('pulls a file in once, however many files include it', () => {
    const read = reader({
      'main.lua': '--- @include "a"\n--- @include "b"\nreturn 1\n',
      'includes/a.lua': '--- @include "shared"\nlocal A = 1\n',
      'includes/b.lua': '--- @include "shared"\nlocal B = 2\n',
      'includes/shared.lua': 'local SHARED = 0\n',
    });
    const resolved = resolveIncludes('main.lua', read);
    expect(resolved.match(/local SHARED = 0/g)).toHaveLength(1);
    expect(resolved.indexOf('local SHARED')).toBeLessThan(resolved.indexOf('local A'));
  });

  it('refuses an include cycle, naming the files on it', () => {
    const read = reader({
      'main.lua': '--- @include "a"\n',
      'includes/a.lua': '--- @include "b"\n',
      'includes/b.lua': '--- @include "a"\n',
    });
    expect(() => resolveIncludes('main.lua', read)).toThrow(
      'Lua include cycle: main.lua -> includes/a.lua -> includes/b.lua -> includes/a.lua',
    );
  });

  it('names the including file and the missing one', () => {
    const read = reader({ 'main.lua': '--- @include "a"\n', 'includes/a.lua': '--- @include "gone"\n' });
    expect(() => resolveIncludes('main.lua', read)).toThrow(
      'includes/a.lua includes "gone", but there is no includes/gone.lua',
    );
  });
});

describe('the real scripts', () => {
  const sources = [...scriptSources()];

  it('all load, each with the #!lua shebang first and no include line left', () => {
    expect(sources.length).toBe(12);
    for (const [name, lua] of sources) {
      expect({ name, shebang: lua.split('\n')[0]!.startsWith('#!lua') }).toEqual({ name, shebang: true });
      expect({ name, includes: /@include/.test(lua) }).toEqual({ name, includes: false });
    }
  });

  it("use exactly the key count in a file's name (failJob-9.lua: KEYS[1] to KEYS[9], by number only); the others state their rule in a `-- KEYS (...)` header", () => {
    const files = scriptFiles();
    for (const [name, lua] of sources) {
      const code = lua.replace(/--.*$/gm, '');
      const fixed = FIXED_KEY_COUNTS[name];
      if (fixed === undefined) {
        expect({ name, header: /^-- KEYS \(/m.test(lua) }).toEqual({ name, header: true });
        continue;
      }
      expect(files[name]).toBe(`${name}-${fixed}.lua`);
      const indexes = [...code.matchAll(/KEYS\[([^\]]*)\]/g)].map(([, index]) => index!);
      expect({ name, computed: indexes.filter((index) => !/^\d+$/.test(index)) }).toEqual({ name, computed: [] });
      const used = new Set(indexes.map(Number));
      expect({ name, used: [...used].sort((a, b) => a - b) }).toEqual({
        name,
        used: Array.from({ length: fixed }, (_, i) => i + 1),
      });
      expect({ name, countsKeys: /#KEYS/.test(code) }).toEqual({ name, countsKeys: false });
    }
    expect(Object.keys(FIXED_KEY_COUNTS).sort()).toEqual([
      'cancelJob',
      'failJob',
      'releaseJob',
      'reportProgress',
      'retryJob',
    ]);
  });

  it('refuses to run a script of a fixed key count with another number of keys, naming the script', async () => {
    const client = { defineCommand: () => undefined } as unknown as ConstructorParameters<typeof RedisScripts>[0];
    await expect(new RedisScripts(client).run('failJob', ['k1', 'k2'], [])).rejects.toThrow(
      'script failJob-9.lua takes 9 keys, and was given 2',
    );
  });

  it('define each shared function once, before its first call', () => {
    for (const [name, lua] of sources) {
      const code = lua.replace(/--.*$/gm, '');
      for (const [, fn] of code.matchAll(/^local function (\w+)\(/gm)) {
        const defined = code.indexOf(`local function ${fn}(`);
        expect({ name, fn, definitions: code.split(`local function ${fn}(`).length - 1 }).toEqual({
          name,
          fn,
          definitions: 1,
        });
        const firstCall = code.search(new RegExp(`(?<!function )\\b${fn}\\(`));
        expect({ name, fn, calledBeforeDefined: firstCall !== -1 && firstCall < defined }).toEqual({
          name,
          fn,
          calledBeforeDefined: false,
        });
      }
    }
  });
});
