import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

/**
 * A throw-away `redis-server` from PATH for one test file: a free port, nothing persisted
 * (`--save '' --appendonly no`), a temporary directory. It can be stopped or killed, started again on the
 * same port (empty, as after a crash without persistence), paused (a hung Redis) and resumed.
 */
export class RedisServer {
  private process: ChildProcess | null = null;
  private output = '';

  private constructor(
    readonly port: number,
    private readonly directory: string,
    private readonly extraArgs: readonly string[],
  ) {}

  /**
   * Starts a server; `args` are extra redis-server arguments such as `['--maxmemory-policy', 'allkeys-lru']`.
   * They come last and so win: `['--appendonly', 'yes', '--appendfsync', 'always']` makes a server that
   * comes back from stop() and start() with its data (the directory lives until dispose()).
   */
  static async start(args: readonly string[] = []): Promise<RedisServer> {
    const executable = findOnPath('redis-server');
    const server = new RedisServer(await freePort(), mkdtempSync(join(tmpdir(), 'redis-test-')), args);
    await server.launch(executable);
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.process !== null;
  }

  /** The redis-server's process id while it runs (the benchmark pins it to a CPU). */
  get pid(): number | null {
    return this.process?.pid ?? null;
  }

  /** Starts it again on the same port, after stop(). */
  async start(): Promise<void> {
    if (this.process) return;
    await this.launch(findOnPath('redis-server'));
  }

  /** Shuts it down (SIGTERM, SIGKILL after a grace period) and waits until it has exited. */
  async stop(): Promise<void> {
    const child = this.process;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGCONT');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  /** Kills it with SIGKILL (a crash: no shutdown save) and waits until it has exited. */
  async kill(): Promise<void> {
    const child = this.process;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Freezes the process (SIGSTOP): connections stay open, nothing answers. */
  pause(): void {
    this.process?.kill('SIGSTOP');
  }

  resume(): void {
    this.process?.kill('SIGCONT');
  }

  /** Stops it for good and removes its directory. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.directory, { recursive: true, force: true });
  }

  private async launch(executable: string): Promise<void> {
    this.output = '';
    const child = spawn(
      executable,
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        // A replica's full sync goes through a file (tiny here) and starts at once: a diskless one waits
        // 5 s for more replicas first (Redis's default repl-diskless-sync-delay).
        '--repl-diskless-sync',
        'no',
        '--dir',
        this.directory,
        ...this.extraArgs,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    // A test run that dies must not leave servers behind.
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);
    child.once('exit', () => {
      process.off('exit', killOnExit);
      if (this.process === child) this.process = null;
    });
    this.process = child;
    await this.waitUntilAnswering(child);
  }

  private async waitUntilAnswering(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await answersPing(this.port))) {
      if (this.process !== child) throw new Error(`redis-server exited at startup:\n${this.output.trim()}`);
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(
          `redis-server did not answer on port ${this.port} within ${START_TIMEOUT_MS} ms:\n${this.output.trim()}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

function findOnPath(command: string): string {
  for (const directory of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(directory, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory.
    }
  }
  throw new Error(
    `${command} is not on PATH: the Redis tests need it (apt-get install -y redis-server, or brew install redis).`,
  );
}

/** A TCP port free on 127.0.0.1 right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** A bare RESP PING, so that the helper needs no client library. A server with a password answers NOAUTH: it is up too. */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = (answered: boolean) => {
      socket.destroy();
      resolve(answered);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(/^(\+PONG|-NOAUTH)/.test(data.toString())));
    socket.once('error', () => done(false));
  });
}
