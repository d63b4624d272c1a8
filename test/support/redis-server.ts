import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
/** How many times a server is started on new ports when another process took the ones found free. */
const PORT_ATTEMPTS = 5;

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
    return RedisServer.startOnPorts(1, ([port]) => [port!, args]);
  }

  /**
   * Starts a Redis Cluster node (`--cluster-enabled yes`, then `args`). Its cluster bus gets a port of its
   * own, found free like the client port and passed as `--cluster-port`: by default Redis takes the
   * client port + 10000, which nothing checked free, and which Redis refuses (it exits) for a client port
   * above 55535, as listen(0) may hand out. `ports` (client, bus): ports found free already, as
   * RedisCluster does for all its nodes at once so that no two draw the same; tried first.
   */
  static async startClusterNode(args: readonly string[] = [], ports?: [number, number]): Promise<RedisServer> {
    return RedisServer.startOnPorts(
      2,
      ([port, busPort]) => [port!, ['--cluster-enabled', 'yes', '--cluster-port', String(busPort), ...args]],
      ports,
    );
  }

  /**
   * Starts a server on `count` ports found free (the first is the client port); `build` gives the client
   * port and the arguments. A port taken by another process between the check and redis-server's bind
   * (other test files start servers too) makes it start again on new ports, up to PORT_ATTEMPTS times.
   */
  private static async startOnPorts(
    count: number,
    build: (ports: number[]) => [number, readonly string[]],
    first?: readonly number[],
  ): Promise<RedisServer> {
    const executable = findOnPath('redis-server');
    let ports = first ? [...first] : await freePorts(count);
    for (let attempt = 1; ; attempt++) {
      const [port, args] = build(ports);
      const server = new RedisServer(port, mkdtempSync(join(tmpdir(), 'redis-test-')), args);
      try {
        await server.launch(executable);
        return server;
      } catch (error) {
        rmSync(server.directory, { recursive: true, force: true });
        if (!(error instanceof PortTakenError)) throw error;
        if (attempt === PORT_ATTEMPTS)
          throw new Error(
            `redis-server could not bind its port(s) ${PORT_ATTEMPTS} times in a row, each time on ports found ` +
              `free a moment before (last: ${ports.join(', ')}): another process takes them first.\n${error.message}`,
          );
        ports = await freePorts(count);
      }
    }
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
    // Our server's own line as well as an answer: another test file's server that took the port first
    // answers PING too, while ours exits with "Address already in use".
    while (!(/ready to accept connections/i.test(this.output) && (await answersPing(this.port)))) {
      if (this.process !== child) {
        const output = this.output.trim();
        // "Could not create server TCP listening socket 127.0.0.1:<port>: bind: Address already in use"
        if (output.includes('Address already in use'))
          throw new PortTakenError(`redis-server exited at startup:\n${output}`);
        throw new Error(`redis-server exited at startup:\n${output}`);
      }
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
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

/**
 * `count` distinct TCP ports free on 127.0.0.1 right now: the OS picks each, and all are held open
 * together until the last is found, so that no two are the same. Fails, saying so, when the OS has none.
 */
export async function freePorts(count: number): Promise<number[]> {
  const probes: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const probe = createServer();
      probes.push(probe);
      await new Promise<void>((resolve, reject) => {
        probe.once('error', reject);
        probe.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return probes.map((probe) => (probe.address() as AddressInfo).port);
  } catch (error) {
    throw new Error(
      `Could not find ${count} free TCP port(s) on 127.0.0.1 for redis-server: ${(error as Error).message}`,
    );
  } finally {
    await Promise.all(
      probes.map(
        (probe) => new Promise<void>((resolve) => (probe.listening ? probe.close(() => resolve()) : resolve())),
      ),
    );
  }
}

/** redis-server exited at startup because a port it was to listen on is taken. */
class PortTakenError extends Error {}

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
