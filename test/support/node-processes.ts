import { spawn, type ChildProcess } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type ts from 'typescript';
import { RUN_DIR_VARIABLE } from './test-run-dir.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const READY_PREFIX = 'READY ';
const STOP_TIMEOUT_MS = 15_000;

/**
 * lib/ and the test process entries (test/support/processes/) compiled for plain `node`, once per
 * `npm test` run, into the run's directory (test/support/test-run-dir.ts makes it, test-run-dir-teardown.ts
 * removes it at the end): the first test file that needs it compiles it (seconds on a busy machine), the others
 * reuse it. Transpiled file by file, as ts-jest does for the tests (type checking is `npm run lint`'s job).
 */
export class CompiledProcesses {
  private constructor(readonly outDir: string) {}

  static async compile(): Promise<CompiledProcesses> {
    const runDir = process.env[RUN_DIR_VARIABLE];
    if (!runDir) throw new Error(`${RUN_DIR_VARIABLE} is not set: run the tests with jest (jest.config.ts).`);
    const outDir = join(runDir, 'compiled');
    if (existsSync(outDir)) return new CompiledProcesses(outDir);
    // Two test workers may compile at once: each into a directory of its own, then renamed into place
    // (atomic); the one that comes second keeps the first one's and drops its own.
    const building = mkdtempSync(join(runDir, 'compiling-'));
    await transpileInto(building);
    try {
      renameSync(building, outDir);
    } catch (error) {
      if (!existsSync(outDir)) throw error;
      rmSync(building, { recursive: true, force: true });
    }
    return new CompiledProcesses(outDir);
  }

  /** The compiled file of a test/support/processes/ entry, e.g. `counter-app`. */
  entry(name: string): string {
    return join(this.outDir, 'test', 'support', 'processes', `${name}.js`);
  }
}

async function transpileInto(outDir: string): Promise<void> {
  // Loaded only by the file that compiles: the compiler is a large module.
  const { default: typescript } = await import('typescript');
  // ESM output, and the project's node_modules for its imports.
  writeFileSync(join(outDir, 'package.json'), JSON.stringify({ type: 'module' }));
  symlinkSync(join(ROOT, 'node_modules'), join(outDir, 'node_modules'), 'dir');
  const compilerOptions: ts.CompilerOptions = {
    ...typescript.convertCompilerOptionsFromJson(
      JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')).compilerOptions,
      ROOT,
    ).options,
    module: typescript.ModuleKind.ES2022,
    moduleResolution: typescript.ModuleResolutionKind.Bundler,
    declaration: false,
    sourceMap: false,
    inlineSourceMap: true,
  };
  for (const directory of ['lib', 'test/support/processes']) {
    for (const file of readdirSync(join(ROOT, directory), { recursive: true, encoding: 'utf8' })) {
      const source = join(ROOT, directory, file);
      const target = join(outDir, relative(ROOT, source));
      if (file.endsWith('.ts')) {
        const { outputText } = typescript.transpileModule(readFileSync(source, 'utf8'), {
          compilerOptions,
          fileName: source,
        });
        mkdirSync(dirname(target), { recursive: true });
        writeFileSync(target.replace(/\.ts$/, '.js'), outputText);
      } else if (file.endsWith('.lua')) {
        // The Redis store reads its scripts beside its compiled module.
        mkdirSync(dirname(target), { recursive: true });
        copyFileSync(source, target);
      }
    }
  }
}

/**
 * A spawned `node` process running a process entry. The entry prints `READY <json>` once it serves;
 * start() resolves with that JSON. Output is kept for the failure message. Killed when the test run exits.
 */
export class NodeProcess {
  private output = '';
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        process.off('exit', killOnExit);
        resolve({ code, signal });
      }),
    );
  }

  static async start<T = unknown>(
    name: string,
    entry: string,
    env: Record<string, string>,
    timeoutMs = 20_000,
  ): Promise<{ process: NodeProcess; ready: T }> {
    const child = spawn(process.execPath, [entry], {
      // Not the test runner's --experimental-vm-modules.
      env: { ...process.env, NODE_OPTIONS: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const started = new NodeProcess(name, child);
    const ready = await started.waitForReady<T>(timeoutMs);
    return { process: started, ready };
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** What it printed so far, for a failure message. */
  tail(lines = 40): string {
    return this.output.trim().split('\n').slice(-lines).join('\n');
  }

  /** Sends a signal and returns at once: `SIGKILL` is a crash, `SIGTERM` a graceful shutdown. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.child.kill(signal);
  }

  /** Resolves with how it ended, once it has exited. */
  waitForExit(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.exited;
  }

  /** SIGTERM (a graceful Nest shutdown), SIGKILL after a grace period; resolves with how it ended. */
  async stop(
    graceMs = STOP_TIMEOUT_MS,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null; graceful: boolean }> {
    if (!this.running) return { ...(await this.exited), graceful: true };
    this.child.kill('SIGTERM');
    let graceful = true;
    const timer = setTimeout(() => {
      graceful = false;
      this.child.kill('SIGKILL');
    }, graceMs);
    const how = await this.exited;
    clearTimeout(timer);
    return { ...how, graceful };
  }

  private waitForReady<T>(timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => fail(`did not print READY within ${timeoutMs} ms`), timeoutMs);
      const onData = () => {
        const line = this.output.split('\n').find((candidate) => candidate.startsWith(READY_PREFIX));
        if (line === undefined) return;
        cleanUp();
        resolve(JSON.parse(line.slice(READY_PREFIX.length)) as T);
      };
      const onExit = () => fail('exited before it was ready');
      const fail = (reason: string) => {
        cleanUp();
        this.child.kill('SIGKILL');
        reject(new Error(`Process ${this.name} ${reason}:\n${this.tail()}`));
      };
      const cleanUp = () => {
        clearTimeout(timer);
        this.child.stdout!.off('data', onData);
        this.child.off('exit', onExit);
      };
      this.child.stdout!.on('data', onData);
      this.child.once('exit', onExit);
    });
  }
}
