import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import ts from 'typescript';
import { RedisJobStore } from '../../lib/store/redis/redis-job-store.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { RedisServer } from '../support/redis-server.js';

/**
 * docs/deployment.md keeps its promises: every TypeScript block type-checks against the real library
 * (imported as 'nestjs-async-endpoints'), and the Redis command of its Compose file starts a Redis the
 * store accepts.
 *
 * A block preceded by `<!-- file: name.ts -->` is that file, so that blocks can import one another
 * (`./app.module.js`); others are files of their own. `<!-- fragment -->` skips a block (keep them rare).
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DOC = join(ROOT, 'docs', 'deployment.md');
/** Where the blocks pretend to live: inside the project, so that its node_modules resolve. */
const EXAMPLES_DIR = join(ROOT, 'docs', '.examples');

interface CodeBlock {
  lang: string;
  /** 1-based line of the block's first code line in the doc. */
  line: number;
  code: string;
  marker: string | null;
}

function codeBlocks(markdown: string): CodeBlock[] {
  const lines = markdown.split('\n');
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    let end = i + 1;
    while (end < lines.length && !/^```\s*$/.test(lines[end]!)) end++;
    let before = i - 1;
    while (before >= 0 && lines[before]!.trim() === '') before--;
    const marker = before >= 0 ? (/^<!--\s*(.+?)\s*-->$/.exec(lines[before]!.trim())?.[1] ?? null) : null;
    blocks.push({ lang: open[1]!, line: i + 2, code: lines.slice(i + 1, end).join('\n'), marker });
    i = end;
  }
  return blocks;
}

/** The first reply to a bare RESP PING, without a client library's handshake. */
function rawPing(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString());
    });
    socket.once('error', reject);
  });
}

const markdown = readFileSync(DOC, 'utf8');
const blocks = codeBlocks(markdown);
const tsBlocks = blocks.filter((block) => block.lang === 'ts' || block.lang === 'typescript');

describe('docs/deployment.md', () => {
  it('has TypeScript examples, and few fragments', () => {
    expect(tsBlocks.length).toBeGreaterThanOrEqual(8);
    expect(tsBlocks.filter((block) => block.marker === 'fragment').length).toBeLessThanOrEqual(1);
  });

  it('type-checks every TypeScript block against the library', () => {
    const files = new Map<string, { source: string; block: CodeBlock }>();
    for (const block of tsBlocks.filter((candidate) => candidate.marker !== 'fragment')) {
      const named = block.marker?.match(/^file:\s*(\S+\.ts)$/)?.[1];
      const path = join(EXAMPLES_DIR, named ?? `block-at-line-${block.line}.ts`);
      expect(files.has(path)).toBe(false);
      // A block without imports or exports is still a module of its own, not a global script.
      files.set(path, { source: `${block.code}\nexport {};\n`, block });
    }

    const config = ts.parseJsonConfigFileContent(
      JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')) as object,
      ts.sys,
      ROOT,
    );
    const options: ts.CompilerOptions = {
      ...config.options,
      noEmit: true,
      declaration: false,
      sourceMap: false,
      types: ['node'],
      baseUrl: ROOT,
      paths: { 'nestjs-async-endpoints': ['lib/index.ts'] },
    };
    const host = ts.createCompilerHost(options);
    const { fileExists, readFile, getSourceFile, directoryExists } = host;
    host.directoryExists = (path) => path === EXAMPLES_DIR || (directoryExists?.call(host, path) ?? true);
    host.fileExists = (path) => files.has(path) || fileExists.call(host, path);
    host.readFile = (path) => files.get(path)?.source ?? readFile.call(host, path);
    host.getSourceFile = (path, languageVersion, onError, shouldCreate) => {
      const file = files.get(path);
      return file
        ? ts.createSourceFile(path, file.source, languageVersion, true)
        : getSourceFile.call(host, path, languageVersion, onError, shouldCreate);
    };
    const program = ts.createProgram([...files.keys()], options, host);

    expect(program.getSourceFile(join(ROOT, 'lib', 'index.ts'))).toBeDefined();
    const problems = ts
      .getPreEmitDiagnostics(program)
      .filter((diagnostic) => diagnostic.file === undefined || files.has(diagnostic.file.fileName))
      .map((diagnostic) => {
        const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
        if (!diagnostic.file) return message;
        const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
        return `docs/deployment.md:${files.get(diagnostic.file.fileName)!.block.line + line}: ${message}`;
      });
    expect(problems).toEqual([]);
  });

  describe("the Compose file's Redis command", () => {
    const PASSWORD = 'compose-password-1';
    let server: RedisServer | undefined;

    afterAll(async () => {
      await server?.dispose();
    });

    it('starts a Redis with AOF, noeviction and the password, which the store accepts', async () => {
      const compose = blocks.find((block) => block.lang === 'yaml' && block.code.includes('image: redis:'));
      expect(compose).toBeDefined();
      const command = /^ {4}command:\n((?: {6}- .+\n)+)/m.exec(`${compose!.code}\n`)?.[1];
      expect(command).toBeDefined();
      const args = command!
        .trimEnd()
        .split('\n')
        .map((line) => line.replace(/^ {6}- /, '').replace(/^"(.*)"$/, '$1'))
        .map((arg) => arg.replace(/^\$\{REDIS_PASSWORD:\?[^}]*\}$/, PASSWORD));
      expect(args[0]).toBe('redis-server');
      expect(args).toEqual(
        expect.arrayContaining(['--appendonly', '--maxmemory-policy', 'noeviction', '--requirepass', PASSWORD]),
      );

      // Its flags come after the test server's own (port, directory) and win over them.
      server = await RedisServer.start(args.slice(1));
      expect(await rawPing(server.port)).toMatch(/^-NOAUTH/);

      const admin = new Redis(server.url, { password: PASSWORD });
      try {
        expect(await admin.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
        expect(await admin.config('GET', 'appendfsync')).toEqual(['appendfsync', 'everysec']);
      } finally {
        await admin.quit();
      }

      const logger = new RecordingLogger();
      const store = new RedisJobStore({ url: server.url, options: { password: PASSWORD }, logger });
      try {
        await store.init();
        await store.ping();
        expect(store.diagnostics()).toMatchObject({ evictionPolicy: 'noeviction', evictionPolicyOk: true });
        expect(logger.messages('warn')).toEqual([]);
      } finally {
        await store.close();
      }
    });
  });
});
