import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { plainToInstance } from 'class-transformer';
import { validateSync, type ValidationError } from 'class-validator';
import { InvalidAsyncEndpointsOptionsError } from '../errors/boot.errors.js';
import { DEFAULT_MAX_JSON_DEPTH } from '../job/json-input.js';
import { JobStore } from '../store/job-store.js';
import { maskUrlPassword } from '../store/redis/redis-url.js';
import type {
  AsyncEndpointsModuleOptions,
  MemoryStoreConfig,
  ResolvedAsyncEndpointsOptions,
  StoreConfig,
} from './async-endpoints-options.js';
import { AsyncEndpointsOptionsSchema } from './options.schema.js';
import { defaultPartitions, validateRedisStore } from './redis-store-options.js';

/** Validates the user's options and fills in every default. */
export function resolveOptions(options: AsyncEndpointsModuleOptions = {}): ResolvedAsyncEndpointsOptions {
  const badGroups = GROUPS.filter((group) => !isGroup(options[group]));
  const problems = [
    ...validateStore(options.store),
    ...badGroups.map(
      (group) =>
        `${group} = ${describe(options[group])}: must be an object of ${group} options, or left out for the defaults`,
    ),
    // A group that is not an object has no options to check one by one; the others still are.
    ...validateSchema(Object.fromEntries(Object.entries(options).filter(([key]) => !badGroups.includes(key as never)))),
  ];
  if (options.jobOwner !== undefined && typeof options.jobOwner !== 'function') {
    problems.push(`jobOwner = ${describe(options.jobOwner)}: must be a function (request) => string | undefined`);
  }
  if (problems.length > 0) throw new InvalidAsyncEndpointsOptionsError(problems);

  const {
    worker = {},
    jobManager = {},
    recovery = {},
    retention = {},
    http = {},
    health = {},
    dashboard = {},
  } = options;
  return {
    store: resolveStore(options.store),
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
      dropPayloadOnFinish: retention.dropPayloadOnFinish ?? false,
    },
    http: {
      jobsPath: http.jobsPath === undefined ? 'jobs' : http.jobsPath,
      retryAfterSeconds: http.retryAfterSeconds ?? 1,
      pendingStatusCode: http.pendingStatusCode ?? 200,
      captureHeaders: http.captureHeaders ?? {},
      captureQueryParams: http.captureQueryParams ?? {},
      exposeErrorDetails: http.exposeErrorDetails ?? false,
      bodyLimitBytes: http.bodyLimitBytes ?? 1024 * 1024,
      maxLongPolls: http.maxLongPolls ?? 1000,
      maxJsonDepth: http.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH,
    },
    dashboard: {
      enabled: dashboard.enabled ?? false,
      path: (dashboard.path ?? 'admin/jobs').replace(/^\/+|\/+$/g, ''),
      readOnly: dashboard.readOnly ?? false,
      guards: dashboard.guards ?? [],
      hidePayloads: dashboard.hidePayloads ?? false,
    },
    health: {
      unhandledJobsAfterMs: health.unhandledJobsAfterMs ?? 60_000,
    },
    failFastOnStoreUnavailable: options.failFastOnStoreUnavailable ?? false,
    jobOwner: options.jobOwner ?? null,
  };
}

/** The keys each store type accepts: adding an option to a store is one entry here. */
const STORE_KEYS = {
  memory: ['type', 'maxRetainedJobs', 'maxRetainedBytes'],
  redis: ['type', 'url', 'options', 'client', 'cluster', 'keyPrefix', 'partitions', 'waitForReplicas'],
} as const satisfies {
  [Type in Exclude<StoreConfig, JobStore>['type']]: readonly (keyof Extract<StoreConfig, { type: Type }>)[];
};

const GROUPS = ['worker', 'jobManager', 'recovery', 'retention', 'http', 'health', 'dashboard'] as const;

function isGroup(value: unknown): boolean {
  return value === undefined || (typeof value === 'object' && value !== null && !Array.isArray(value));
}

function validateStore(store: StoreConfig | undefined): string[] {
  if (store === undefined || store instanceof JobStore) return [];
  if (typeof store !== 'object' || store === null) {
    // A URL given as the store itself is a likely slip: shown masked, as store.url is.
    const shown = typeof store === 'string' ? maskUrlPassword(store) : store;
    return [`store = ${describe(shown)}: must be { type: 'memory' }, { type: 'redis', ... } or a JobStore instance`];
  }
  if (store.type !== 'memory' && store.type !== 'redis') {
    return [`store.type = ${describe((store as { type?: unknown }).type)}: must be 'memory' or 'redis'`];
  }
  const allowed: readonly string[] = STORE_KEYS[store.type];
  const problems = Object.keys(store)
    .filter((key) => !allowed.includes(key))
    .map((key) => `store.${key}: there is no such option for the ${store.type} store (allowed: ${allowed.join(', ')})`);
  if (store.type === 'memory') return [...problems, ...validateMemoryStore(store)];
  return [...problems, ...validateRedisStore(store, describe)];
}

/** The store option with its defaults: a Redis store's partition count (1 on one node, 12 on a Cluster). */
function resolveStore(store: StoreConfig | undefined): StoreConfig {
  if (store === undefined) return { type: 'memory' };
  if (store instanceof JobStore || store.type !== 'redis') return store;
  return { ...store, partitions: store.partitions ?? defaultPartitions(store) };
}

function validateMemoryStore(store: MemoryStoreConfig): string[] {
  const problems: string[] = [];
  for (const option of ['maxRetainedJobs', 'maxRetainedBytes'] as const) {
    const value = store[option];
    if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
      problems.push(`store.${option} = ${describe(value)}: must be an integer of at least 1`);
    }
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

/** Constraints that mean "a number": a string there gets one message with the fix instead of each rule. */
const NUMBER_CONSTRAINTS = new Set(['isInt', 'isPositive', 'isNumber', 'min', 'max']);

function flatten(error: ValidationError, parent: string): string[] {
  const path = parent ? `${parent}.${error.property}` : error.property;
  const constraints = Object.keys(error.constraints ?? {});
  if (typeof error.value === 'string' && constraints.some((constraint) => NUMBER_CONSTRAINTS.has(constraint))) {
    return [
      `${path} = ${describe(error.value)}: must be a number, not a string; convert it, e.g. Number(process.env.X)`,
    ];
  }
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
