import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { plainToInstance } from 'class-transformer';
import { validateSync, type ValidationError } from 'class-validator';
import { DEFAULT_MAX_JSON_DEPTH } from '../job/json-input.js';
import { JobStore } from '../store/job-store.js';
import type { AsyncEndpointsModuleOptions, ResolvedAsyncEndpointsOptions, StoreConfig } from './async-endpoints-options.js';
import { AsyncEndpointsOptionsSchema } from './options.schema.js';

/** Thrown at boot for an invalid option; the message names each option, its value and the rule. */
export class InvalidAsyncEndpointsOptionsError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid AsyncEndpointsModule options:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'InvalidAsyncEndpointsOptionsError';
  }
}

/** Validates the user's options and fills in every default. */
export function resolveOptions(options: AsyncEndpointsModuleOptions = {}): ResolvedAsyncEndpointsOptions {
  const problems = [...validateStore(options.store), ...validateSchema(options)];
  if (options.jobOwner !== undefined && typeof options.jobOwner !== 'function') {
    problems.push(`jobOwner = ${describe(options.jobOwner)}: must be a function (request) => string | undefined`);
  }
  if (problems.length > 0) throw new InvalidAsyncEndpointsOptionsError(problems);

  const { worker = {}, jobManager = {}, recovery = {}, retention = {}, http = {} } = options;
  return {
    store: options.store ?? { type: 'memory' },
    worker: {
      enabled: worker.enabled ?? true,
      workerId: worker.workerId ?? randomUUID(),
      maximumConcurrency: worker.maximumConcurrency ?? availableParallelism(),
      pollingIntervalMs: worker.pollingIntervalMs ?? 1000,
      batchSize: worker.batchSize ?? 10,
      jobTimeoutMinutes: worker.jobTimeoutMinutes ?? 30,
      maximumQueueSize: worker.maximumQueueSize ?? 1000,
      shutdownTimeoutMs: worker.shutdownTimeoutMs ?? 30_000,
    },
    jobManager: {
      defaultMaxRetries: jobManager.defaultMaxRetries ?? 3,
      retryDelayBaseSeconds: jobManager.retryDelayBaseSeconds ?? 2,
      maxRetryDelaySeconds: jobManager.maxRetryDelaySeconds ?? 300,
      maxConcurrentJobs: jobManager.maxConcurrentJobs ?? null,
      jobClaimTimeoutMs: jobManager.jobClaimTimeoutMs ?? 30_000,
    },
    recovery: {
      enableDistributedJobRecovery: recovery.enableDistributedJobRecovery ?? true,
      recoveryCheckIntervalSeconds: recovery.recoveryCheckIntervalSeconds ?? 15,
      jobTimeoutMinutes: recovery.jobTimeoutMinutes ?? 60,
      maximumRetries: recovery.maximumRetries ?? 2,
    },
    retention: {
      completedTtlSeconds: retention.completedTtlSeconds ?? 86_400,
      failedTtlSeconds: retention.failedTtlSeconds ?? 604_800,
    },
    http: {
      jobsPath: http.jobsPath === undefined ? 'jobs' : http.jobsPath,
      retryAfterSeconds: http.retryAfterSeconds ?? 1,
      pendingStatusCode: http.pendingStatusCode ?? 200,
      captureHeaders: http.captureHeaders ?? {},
      exposeErrorDetails: http.exposeErrorDetails ?? false,
      bodyLimitBytes: http.bodyLimitBytes ?? 1024 * 1024,
      maxJsonDepth: http.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH,
    },
    failFastOnStoreUnavailable: options.failFastOnStoreUnavailable ?? false,
    jobOwner: options.jobOwner ?? null,
  };
}

function validateStore(store: StoreConfig | undefined): string[] {
  if (store === undefined || store instanceof JobStore) return [];
  if (typeof store !== 'object' || store === null) {
    return [`store = ${describe(store)}: must be { type: 'memory' }, { type: 'redis', ... } or a JobStore instance`];
  }
  if (store.type === 'memory') return [];
  if (store.type !== 'redis') {
    return [`store.type = ${describe((store as { type?: unknown }).type)}: must be 'memory' or 'redis'`];
  }
  const problems: string[] = [];
  if (store.url !== undefined && !/^rediss?:\/\//.test(String(store.url))) {
    problems.push(`store.url = ${describe(store.url)}: must start with redis:// or rediss://`);
  }
  if (store.keyPrefix !== undefined && !/^[^{}]*\{[^{}]+\}[^{}]*$/.test(String(store.keyPrefix))) {
    problems.push(
      `store.keyPrefix = ${describe(store.keyPrefix)}: must hold exactly one non-empty {hash tag}, such as '{async-endpoints}', so that all keys share one Redis Cluster slot`,
    );
  }
  return problems;
}

function validateSchema(options: AsyncEndpointsModuleOptions): string[] {
  const { store: _store, jobOwner: _owner, ...plain } = options;
  const instance = plainToInstance(AsyncEndpointsOptionsSchema, plain);
  return validateSync(instance, { forbidUnknownValues: false, whitelist: true, forbidNonWhitelisted: true }).flatMap(
    (error) => flatten(error, ''),
  );
}

function flatten(error: ValidationError, parent: string): string[] {
  const path = parent ? `${parent}.${error.property}` : error.property;
  const own = Object.entries(error.constraints ?? {}).map(([constraint, rule]) =>
    constraint === 'whitelistValidation'
      ? `${path}: there is no such option (check the spelling against the docs' configuration page)`
      : `${path} = ${describe(error.value)}: ${rule.replace(error.property, 'it')}`,
  );
  return [...own, ...(error.children ?? []).flatMap((child) => flatten(child, path))];
}

function describe(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
