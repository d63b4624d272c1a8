import type { CanActivate, Type } from '@nestjs/common';
import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import type { JobStore } from '../store/job-store.js';

/** The request as the `jobOwner` function sees it (Express or Fastify request). */
export interface AsyncEndpointRequest {
  headers: Record<string, string | string[] | undefined>;
  [key: string]: unknown;
}

/** `store: { type: 'memory' }`: the embedded store, one process, nothing durable across restarts (the default). */
export interface MemoryStoreConfig {
  type: 'memory';
  /**
   * Most jobs kept. Beyond it the oldest finished jobs are evicted before their retention ends; live
   * jobs never are: a submit that finds only live ones gets a 503. Default 10000.
   */
  maxRetainedJobs?: number;
  /**
   * Most bytes kept (JSON text of payloads, captured request data, results and errors, plus 1 KiB per
   * job), with the same eviction. Default 268435456 (256 MiB).
   */
  maxRetainedBytes?: number;
}

/** `store: { type: 'redis', ... }`: jobs in Redis, shared by every process. */
export interface RedisStoreConfig {
  type: 'redis';
  /** `redis://` or `rediss://` (TLS) URL. */
  url?: string;
  /** ioredis options; settings the URL carries (host, port, password, db, TLS) take precedence. */
  options?: RedisOptions;
  /** An existing connection (a `Redis` or a `Cluster`); the library never closes it. */
  client?: Redis | Cluster;
  /** A Redis Cluster: its seed nodes (`host:port` strings or ioredis nodes) and ioredis cluster options. */
  cluster?: { nodes: (string | ClusterNode)[]; options?: ClusterOptions };
  /** Key prefix holding a Cluster hash tag; default `{async-endpoints}`. */
  keyPrefix?: string;
  /**
   * How many partitions the store is split into, each under its own hash tag, so that a Cluster
   * spreads them over its masters. Default 1 on a single node, 12 on a Cluster. Fixed once jobs are
   * stored: changing it needs `nestjs-async-endpoints migrate`.
   */
  partitions?: number;
  /**
   * Wait until this many replicas have each write batch (Redis `WAIT`) before answering, so that a
   * failover loses no acknowledged job. Off by default.
   */
  waitForReplicas?: { replicas: number; timeoutMs: number };
}

/** The `store` option: a memory or Redis configuration, or an instance of your own `JobStore`. */
export type StoreConfig = MemoryStoreConfig | RedisStoreConfig | JobStore;

/** The `worker` options: this process's worker. */
export interface WorkerOptions {
  /** Run workers in this process; false = API-only process. Default true. */
  enabled: boolean;
  /** Identity of this process's worker in claims, logs and metrics. Default: a random UUID. */
  workerId: string;
  /** Handlers running at once in this process. Default `os.availableParallelism()`. */
  maximumConcurrency: number;
  /** Idle fallback poll; submits wake workers at once. Default 1000. */
  pollingIntervalMs: number;
  /** Most jobs claimed in one store round trip. Default 10. */
  batchSize: number;
  /** Per-attempt time budget; on expiry the attempt fails with JOB_TIMEOUT. Default 30. */
  jobTimeoutMinutes: number;
  /** Most jobs waiting (Queued + Scheduled); beyond it submits get 429. Default 1000. */
  maximumQueueSize: number;
  /** How long running handlers may finish at shutdown before their jobs are released. Default 30000. */
  shutdownTimeoutMs: number;
}

/** The `jobManager` options: retries, backoff and leases, for every process. */
export interface JobManagerOptions {
  /** Retries after the first attempt. Default 3. */
  defaultMaxRetries: number;
  /** Retry k waits `d = base * 2^(k-1)` seconds, jittered to a random point of [d / 2, d]. Default 2. */
  retryDelayBaseSeconds: number;
  /** Cap on one retry delay. Default 300. */
  maxRetryDelaySeconds: number;
  /** Cluster-wide cap on InProgress jobs; null for none. Default null. */
  maxConcurrentJobs: number | null;
  /** Lease on a claimed job, renewed while the handler runs. Default 30000. */
  jobClaimTimeoutMs: number;
}

/** The `recovery` options: the sweep that takes jobs back from dead or hung workers. */
export interface RecoveryOptions {
  /** Run the recovery sweep in this process. Default true. */
  enableDistributedJobRecovery: boolean;
  /** Sweep period; one sweep per period does the work across the deployment. Default 15. */
  recoveryCheckIntervalSeconds: number;
  /** Hard cap on InProgress time, even with a renewed lease. Default 60. */
  jobTimeoutMinutes: number;
  /** Take-backs per job before it fails with JOB_RECOVERY_EXHAUSTED. Default 2. */
  maximumRetries: number;
}

/** The `retention` options: how long finished jobs stay readable, and what they keep. */
export interface RetentionOptions {
  /** How long Completed and Canceled jobs stay readable. Default 86400. */
  completedTtlSeconds: number;
  /** How long Failed jobs stay readable. Default 604800. */
  failedTtlSeconds: number;
  /**
   * Drop the payload (becomes null) and the captured headers and query parameters of a job when it
   * completes, on every store; Failed and Canceled jobs keep them for an operator retry. Default false.
   */
  dropPayloadOnFinish: boolean;
}

/** `http.captureHeaders`: which request headers are stored with the job (`ctx.headers`); compared case-insensitively. */
export interface CaptureHeadersOptions {
  /**
   * Only these headers (case-insensitive). Names that look like credentials (`CREDENTIAL_NAME_PATTERN`:
   * auth, token, secret, key, cookie, session, ...) are stored only when named here.
   */
  include?: string[];
  /** Never these headers. */
  exclude?: string[];
}

/** Which query parameters are stored with the job (`ctx.queryParams`); compared case-insensitively. */
export interface CaptureQueryParamsOptions {
  /** Only these parameters. Names that look like credentials are stored only when named here. */
  include?: string[];
  /** Never these parameters. */
  exclude?: string[];
}

/** The `http` options: routes, answers and input limits. */
export interface HttpOptions {
  /** Where `GET/DELETE /:id` is mounted; false mounts no status controller. Default 'jobs'. */
  jobsPath: string | false;
  /** `Retry-After` on 202 and pending status answers. Default 1. */
  retryAfterSeconds: number;
  /** 200 (default) or 202 for pending jobs on `GET /jobs/:id`. */
  pendingStatusCode: 200 | 202;
  /** Which request headers are stored with the job. Default: all but credential-like and transport ones. */
  captureHeaders: CaptureHeadersOptions;
  /** Which query parameters are stored with the job. Default: all but credential-like ones. */
  captureQueryParams: CaptureQueryParamsOptions;
  /** Show exception type and stack in job documents (development). Default false. */
  exposeErrorDetails: boolean;
  /** Largest accepted request body on async endpoints, in bytes. Default 1 MiB. */
  bodyLimitBytes: number;
  /** Most long-polls (`GET /jobs/:id?waitSeconds=N`) open at once in this app; beyond it they answer at once. Default 1000. */
  maxLongPolls: number;
  /**
   * Deepest nesting of objects and arrays accepted in a payload (HTTP bodies of async endpoints and
   * `AsyncEndpointsService.submit`); deeper answers 400. Default 64, at most 1000.
   */
  maxJsonDepth: number;
}

/** A Nest guard for the dashboard: a class (resolved by Nest, see `DashboardOptions.guards`) or an instance. */
export type DashboardGuard = Type<CanActivate> | CanActivate;

/** The `dashboard` options: the jobs dashboard page and its JSON API (docs/dashboard.md). Off by default. */
export interface DashboardOptions {
  /** Serve the dashboard. Default false. */
  enabled: boolean;
  /** Where the page and its API are mounted, under the app's global prefix. Default 'admin/jobs'. */
  path: string;
  /** Refuse retry, cancel and purge (403); the page shows them off. Default false. */
  readOnly: boolean;
  /**
   * Guards for the dashboard's routes only, run after the app's global guards. A class is taken from
   * the app's providers when registered there, else created by Nest. Default none.
   */
  guards: DashboardGuard[];
  /** Never show payloads, results and captured request data (headers, route and query parameters). Default false. */
  hidePayloads: boolean;
}

/** The `health` options: what the health indicator reports. */
export interface HealthOptions {
  /**
   * A name whose oldest job has waited this long with no live worker registered for it is listed in
   * the health details' `unhandled` (health stays up) and logged once. Default 60000.
   */
  unhandledJobsAfterMs: number;
}

/** `AsyncEndpointsModule.forRoot(options)`: every option is optional. */
export interface AsyncEndpointsModuleOptions {
  store?: StoreConfig;
  worker?: Partial<WorkerOptions>;
  jobManager?: Partial<JobManagerOptions>;
  recovery?: Partial<RecoveryOptions>;
  retention?: Partial<RetentionOptions>;
  http?: Partial<HttpOptions>;
  dashboard?: Partial<DashboardOptions>;
  health?: Partial<HealthOptions>;
  /** Check the store at boot and stop the boot when it is unreachable. Default false. */
  failFastOnStoreUnavailable?: boolean;
  /** Owner of a submitted job; only that owner can read or cancel it (others get 404). */
  jobOwner?: (request: AsyncEndpointRequest) => string | undefined;
}

/** The options after defaults and validation; inject with `@Inject(ASYNC_ENDPOINTS_OPTIONS)`. */
export interface ResolvedAsyncEndpointsOptions {
  store: StoreConfig;
  worker: WorkerOptions;
  jobManager: JobManagerOptions;
  recovery: RecoveryOptions;
  retention: RetentionOptions;
  http: HttpOptions;
  dashboard: DashboardOptions;
  health: HealthOptions;
  failFastOnStoreUnavailable: boolean;
  jobOwner: ((request: AsyncEndpointRequest) => string | undefined) | null;
}
