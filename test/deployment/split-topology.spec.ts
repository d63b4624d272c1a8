import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort, RedisServer } from '../support/redis-server.js';

/**
 * The split deployment of docs/deployment.md, from the sample's own scripts: `npm run start:api` and
 * `npm run start:worker` as real processes on one redis-server, a job submitted over HTTP to the API
 * process and run by the worker process.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** A script rebuilds the sample (incrementally) before it boots: seconds, more on a busy machine. */
const BOOT_TIMEOUT_MS = 60_000;

interface Health {
  status: string;
  details: Record<string, { worker?: { enabled: boolean; workerId?: string } }>;
}

/** An `npm run` script in a process group of its own, so that npm, its shell and node stop together. */
class NpmScript {
  private output = '';
  private readonly exited: Promise<void>;
  private readonly child: ChildProcess;

  constructor(script: string, env: Record<string, string>) {
    this.child = spawn('npm', ['run', script], {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    process.once('exit', () => this.signal('SIGKILL'));
  }

  get log(): string {
    return this.output;
  }

  /** SIGTERM to the group (a graceful Nest shutdown), SIGKILL after a grace period. */
  async stop(graceMs = 10_000): Promise<void> {
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  private signal(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.child.pid!, signal);
    } catch {
      // The group is gone already.
    }
  }
}

async function health(port: number): Promise<Health | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/health`);
    return (await response.json()) as Health;
  } catch {
    return undefined;
  }
}

async function waitForHealth(port: number, script: NpmScript): Promise<Health> {
  const deadline = Date.now() + BOOT_TIMEOUT_MS;
  for (;;) {
    const answer = await health(port);
    if (answer?.status === 'ok') return answer;
    if (Date.now() > deadline)
      throw new Error(`No healthy answer on port ${port} within ${BOOT_TIMEOUT_MS} ms:\n${script.log}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('API-only and worker-only processes from the sample scripts, on one Redis', () => {
  let redis: RedisServer;
  let api: NpmScript | undefined;
  let worker: NpmScript | undefined;
  let apiPort = 0;
  let workerPort = 0;

  beforeAll(async () => {
    redis = await RedisServer.start();
    [apiPort, workerPort] = [await freePort(), await freePort()];
    // One after the other: each script rebuilds the sample into .build first.
    api = new NpmScript('start:api', { REDIS_URL: redis.url, PORT: String(apiPort), INSTANCE_ID: 'api-1' });
    await waitForHealth(apiPort, api);
    worker = new NpmScript('start:worker', { REDIS_URL: redis.url, PORT: String(workerPort), INSTANCE_ID: 'worker-1' });
    await waitForHealth(workerPort, worker);
  }, 150_000);

  afterAll(async () => {
    await Promise.all([api?.stop(), worker?.stop()]);
    await redis?.dispose();
  }, 30_000);

  it('runs a job submitted to the API process in the worker process', async () => {
    const apiHealth = (await health(apiPort))!;
    expect(apiHealth.details['async-endpoints']!.worker).toMatchObject({ enabled: false });
    const workerHealth = (await health(workerPort))!;
    expect(workerHealth.details['async-endpoints']!.worker).toMatchObject({ enabled: true, workerId: 'worker-1' });
    expect(worker!.log).toContain('Worker worker-1 started');

    const submitted = await fetch(`http://127.0.0.1:${apiPort}/api/process`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ data: 'split topology', delayMs: 50 }),
    });
    expect(submitted.status).toBe(202);
    const location = submitted.headers.get('location')!;
    const deadline = Date.now() + 15_000;
    let job: { status: string; result: unknown } | undefined;
    do {
      await new Promise((resolve) => setTimeout(resolve, 50));
      job = (await (await fetch(`http://127.0.0.1:${apiPort}${location}`)).json()) as typeof job;
    } while (job!.status !== 'Completed' && Date.now() < deadline);
    expect(job).toMatchObject({ status: 'Completed', result: { processed: 'SPLIT TOPOLOGY', length: 14 } });
  });
});
