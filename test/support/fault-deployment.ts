import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { JobStatus, type Job } from '../../lib/index.js';
import { RedisJobStore } from '../../lib/store/redis/redis-job-store.js';
import { CompiledProcesses, NodeProcess } from './node-processes.js';
import type { Execution } from './processes/fault-app.js';
import { RecordingLogger } from './recording-logger.js';
import { RedisServer } from './redis-server.js';

/** Timings and limits of the worker processes (fault-app's environment). */
export interface WorkerSettings {
  leaseMs: number;
  sweepSeconds: number;
  concurrency?: number;
  shutdownTimeoutMs?: number;
  maxRecoveries?: number;
}

export interface Ready {
  port: number | null;
  workerId: string;
  pid: number;
}

export interface WorkBody {
  ms: number;
  blockMs?: number;
  poison?: boolean;
}

export interface SubmitAnswer {
  status: number;
  contentType: string | null;
  body: { id?: string; [key: string]: unknown };
  ms: number;
}

/** Longer than this is a hang: the issue wants 503 within 2 s while the store is down. */
const SUBMIT_HANG_MS = 5000;

/**
 * One deployment of the fault-injection suite: a throw-away redis-server, an API process and worker
 * processes running test/support/processes/fault-app.ts, a store client in the test process to look
 * at the jobs, and the handlers' record of executions. dispose() ends everything, also after a failure.
 */
export class FaultDeployment {
  readonly runsKey = `runs-${randomUUID()}`;
  readonly workers = new Map<string, NodeProcess>();
  /** Every process ever started, for dispose() and failure messages (restarted workers too). */
  private readonly processes: NodeProcess[] = [];
  private disposed = false;
  apiUrl = '';

  private constructor(
    readonly server: RedisServer,
    private readonly compiled: CompiledProcesses,
    /** A plain connection for the handlers' record and for looking at Redis. */
    readonly admin: Redis,
    /** The test's own client of the deployment's store, to look at jobs. */
    readonly jobs: RedisJobStore,
    readonly keyPrefix: string,
    readonly settings: WorkerSettings,
  ) {}

  static async start(settings: WorkerSettings, redisArgs: readonly string[] = []): Promise<FaultDeployment> {
    const compiled = await CompiledProcesses.compile();
    let server: RedisServer | undefined;
    try {
      server = await RedisServer.start(redisArgs);
      const keyPrefix = `{ae-fault-${randomUUID()}}`;
      const admin = new Redis(server.url, { maxRetriesPerRequest: null });
      admin.on('error', () => undefined);
      const jobs = new RedisJobStore({ url: server.url, keyPrefix, logger: new RecordingLogger() });
      await jobs.init();
      return new FaultDeployment(server, compiled, admin, jobs, keyPrefix, settings);
    } catch (error) {
      await server?.dispose();
      throw error;
    }
  }

  /** Starts the API process and the named worker processes, all at once. */
  async launch(workerNames: readonly string[], { api = true } = {}): Promise<void> {
    const started = await Promise.allSettled([
      ...(api ? [this.spawn('api', 'api')] : []),
      ...workerNames.map((name) => this.startWorker(name)),
    ]);
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    if (api) this.apiUrl = `http://127.0.0.1:${(started[0] as PromiseFulfilledResult<Ready>).value.port}`;
  }

  /** Starts (or starts again, after it died) the worker process of that name. */
  async startWorker(name: string): Promise<Ready> {
    return this.spawn('worker', name);
  }

  private async spawn(role: 'api' | 'worker', name: string): Promise<Ready> {
    const { settings } = this;
    const { process: child, ready } = await NodeProcess.start<Ready>(
      name,
      this.compiled.entry('fault-app'),
      {
        ROLE: role,
        INSTANCE_ID: name,
        REDIS_URL: this.server.url,
        KEY_PREFIX: this.keyPrefix,
        RUNS_KEY: this.runsKey,
        LEASE_MS: String(settings.leaseMs),
        SWEEP_SECONDS: String(settings.sweepSeconds),
        CONCURRENCY: String(settings.concurrency ?? 8),
        SHUTDOWN_TIMEOUT_MS: String(settings.shutdownTimeoutMs ?? 30_000),
        MAX_RECOVERIES: String(settings.maxRecoveries ?? 2),
      },
      30_000,
    );
    this.processes.push(child);
    if (this.disposed) {
      // Started while the deployment was being torn down (a supervisor's restart): end it too.
      await child.stop(5000);
      throw new Error(`Process ${name} started after the deployment was disposed`);
    }
    if (role === 'worker') this.workers.set(name, child);
    return ready;
  }

  /** POST /api/work through the API process; a hang fails the test. */
  async submit(body: WorkBody): Promise<SubmitAnswer> {
    const started = performance.now();
    const response = await fetch(`${this.apiUrl}/api/work`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(SUBMIT_HANG_MS),
    });
    const text = await response.text();
    return {
      status: response.status,
      contentType: response.headers.get('content-type'),
      body: text ? (JSON.parse(text) as SubmitAnswer['body']) : {},
      ms: performance.now() - started,
    };
  }

  /** The handlers' record: each run once, in the order they were written. */
  async executions(): Promise<Execution[]> {
    const seen = new Set<string>();
    const executions: Execution[] = [];
    for (const line of await this.admin.lrange(this.runsKey, 0, -1)) {
      const execution = JSON.parse(line) as Execution;
      const key = `${execution.run}:${execution.phase}`;
      if (seen.has(key)) continue;
      seen.add(key);
      executions.push(execution);
    }
    return executions;
  }

  /** Jobs InProgress now, all of them. */
  async inProgress(): Promise<Job[]> {
    const jobs: Job[] = [];
    let cursor: string | null = null;
    do {
      const page = await this.jobs.listJobs({ status: JobStatus.InProgress, limit: 1000, cursor });
      jobs.push(...page.jobs);
      cursor = page.nextCursor;
    } while (cursor !== null);
    return jobs;
  }

  /** Waits until every job of `ids` is terminal; returns them (null for a job that is gone). */
  async waitUntilTerminal(ids: readonly string[], timeoutMs: number): Promise<(Job | null)[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const jobs = await getJobs(this.jobs, ids);
      const pending = jobs.filter((job) => job !== null && !['Completed', 'Failed', 'Canceled'].includes(job.status));
      if (pending.length === 0 || Date.now() > deadline) return jobs;
      await sleep(100);
    }
  }

  /** Each process's last lines, for a failure message. */
  outputs(lines = 20): string {
    return this.processes.map((child) => `--- ${child.name} (pid ${child.pid})\n${child.tail(lines)}`).join('\n');
  }

  /** Everything a process printed, for checking its log. */
  output(child: NodeProcess): string {
    return child.tail(Number.MAX_SAFE_INTEGER);
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    await Promise.all(this.processes.map((child) => child.stop(5000)));
    await this.jobs.close();
    this.admin.disconnect();
    await this.server.dispose();
  }
}

/**
 * The jobs of `ids`, read 200 at a time: thousands of reads at once can outlast the store's command
 * deadline on a loaded machine (a "Command timed out" that is the test's doing, not the store's).
 */
export async function getJobs(store: RedisJobStore, ids: readonly string[]): Promise<(Job | null)[]> {
  const jobs: (Job | null)[] = [];
  for (let i = 0; i < ids.length; i += 200)
    jobs.push(...(await Promise.all(ids.slice(i, i + 200).map((id) => store.getJob(id)))));
  return jobs;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A whole number of milliseconds as seconds with two decimals. */
export function seconds(ms: number): string {
  return (ms / 1000).toFixed(2);
}

/** Runs `task` for each item, `parallel` at a time, in order of the items. */
export async function inParallel<T>(
  items: readonly T[],
  parallel: number,
  task: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < items.length) {
        const index = next++;
        await task(items[index]!, index);
      }
    }),
  );
}
