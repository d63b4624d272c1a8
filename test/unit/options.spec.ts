import { availableParallelism } from 'node:os';
import { InvalidAsyncEndpointsOptionsError, MemoryJobStore } from '../../lib/index.js';
import { resolveOptions } from '../../lib/options/resolve-options.js';

describe('resolveOptions', () => {
  it('fills every default of the spec', () => {
    const options = resolveOptions();
    expect(options).toMatchObject({
      store: { type: 'memory' },
      worker: {
        enabled: true,
        workerId: expect.stringMatching(/^[0-9a-f-]{36}$/),
        maximumConcurrency: availableParallelism(),
        pollingIntervalMs: 1000,
        batchSize: 10,
        jobTimeoutMinutes: 30,
        maximumQueueSize: 1000,
        shutdownTimeoutMs: 30_000,
      },
      jobManager: {
        defaultMaxRetries: 3,
        retryDelayBaseSeconds: 2,
        maxRetryDelaySeconds: 300,
        maxConcurrentJobs: null,
        jobClaimTimeoutMs: 30_000,
      },
      recovery: {
        enableDistributedJobRecovery: true,
        recoveryCheckIntervalSeconds: 15,
        jobTimeoutMinutes: 60,
        maximumRetries: 2,
      },
      retention: { completedTtlSeconds: 86_400, failedTtlSeconds: 604_800, dropPayloadOnFinish: false },
      http: {
        jobsPath: 'jobs',
        retryAfterSeconds: 1,
        pendingStatusCode: 200,
        captureHeaders: {},
        captureQueryParams: {},
        exposeErrorDetails: false,
        bodyLimitBytes: 1_048_576,
        maxLongPolls: 1000,
        maxJsonDepth: 64,
      },
      dashboard: { enabled: false, path: 'admin/jobs', readOnly: false, guards: [], hidePayloads: false },
      health: { unhandledJobsAfterMs: 60_000 },
      failFastOnStoreUnavailable: false,
      jobOwner: null,
    });
  });

  it('gives each process its own worker id', () => {
    expect(resolveOptions().worker.workerId).not.toBe(resolveOptions().worker.workerId);
  });

  it('keeps given values, including a store instance and jobsPath false', () => {
    const store = new MemoryJobStore();
    const options = resolveOptions({ store, http: { jobsPath: false }, jobManager: { maxConcurrentJobs: 5 } });
    expect(options.store).toBe(store);
    expect(options.http.jobsPath).toBe(false);
    expect(options.jobManager.maxConcurrentJobs).toBe(5);
  });

  it.each([
    [{ worker: { pollingIntervalMs: -1 } }, 'worker.pollingIntervalMs = -1'],
    [{ worker: { maximumConcurrency: 0 } }, 'worker.maximumConcurrency = 0'],
    [{ worker: { batchSize: 2.5 } }, 'worker.batchSize = 2.5'],
    [{ worker: { enabled: 'yes' } }, 'worker.enabled = "yes"'],
    [{ jobManager: { defaultMaxRetries: -1 } }, 'jobManager.defaultMaxRetries = -1'],
    [{ jobManager: { maxConcurrentJobs: 0 } }, 'jobManager.maxConcurrentJobs = 0'],
    [{ recovery: { recoveryCheckIntervalSeconds: 0 } }, 'recovery.recoveryCheckIntervalSeconds = 0'],
    [{ retention: { failedTtlSeconds: -5 } }, 'retention.failedTtlSeconds = -5'],
    [{ http: { pendingStatusCode: 201 } }, 'http.pendingStatusCode = 201'],
    [{ http: { jobsPath: 'with space' } }, 'http.jobsPath = "with space"'],
    [{ http: { maxLongPolls: -1 } }, 'http.maxLongPolls = -1: it must not be less than 0'],
    [{ http: { maxLongPolls: 1.5 } }, 'http.maxLongPolls = 1.5: it must be an integer number'],
    [{ http: { captureHeaders: { include: 'authorization' } } }, 'http.captureHeaders.include = "authorization"'],
    [{ http: { captureQueryParams: { exclude: 'page' } } }, 'http.captureQueryParams.exclude = "page"'],
    [{ store: { type: 'memory', maxRetainedJobs: 0 } }, 'store.maxRetainedJobs = 0: must be an integer of at least 1'],
    [
      { store: { type: 'memory', maxRetainedBytes: 1.5 } },
      'store.maxRetainedBytes = 1.5: must be an integer of at least 1',
    ],
    [{ retention: { dropPayloadOnFinish: 'yes' } }, 'retention.dropPayloadOnFinish = "yes"'],
    [{ store: { type: 'postgres' } }, "store.type = \"postgres\": must be 'memory' or 'redis'"],
    [{ store: { type: 'redis', url: 'http://x' } }, 'store.url = "http://x": must start with redis:// or rediss://'],
    [
      { store: { type: 'redis', url: 'http://app:s3cret@x/?password=s3cret' } },
      'store.url = "http://app:***@x/?password=***": must start',
    ],
    [{ store: { type: 'redis', url: 'app:s3cret@x:6379' } }, 'store.url = "app:***@x:6379": must start with redis://'],
    [{ store: 'redis://:s3cret@x:6379' }, 'store = "redis://:***@x:6379": must be { type: \'memory\' }'],
    [{ store: { type: 'redis', keyPrefix: 'no-tag' } }, 'store.keyPrefix = "no-tag"'],
    [{ jobOwner: 'alice' }, 'jobOwner = "alice": must be a function'],
    [{ worker: { jobTimeoutMinutes: 60_000 } }, 'worker.jobTimeoutMinutes = 60000: it must not be greater than 35791'],
    [{ worker: { pollingIntervalMs: 2 ** 31 } }, 'worker.pollingIntervalMs = 2147483648: it must not be greater than'],
    [{ http: { maxJsonDepth: 0 } }, 'http.maxJsonDepth = 0: it must not be less than 1'],
    [{ http: { maxJsonDepth: 1001 } }, 'http.maxJsonDepth = 1001: it must not be greater than 1000'],
    [{ http: { maxJsonDepth: 2.5 } }, 'http.maxJsonDepth = 2.5: it must be an integer'],
  ])('rejects %j naming the option, the value and the rule', (options, expected) => {
    let error: unknown;
    try {
      resolveOptions(options as never);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(InvalidAsyncEndpointsOptionsError);
    expect((error as Error).message).toContain(expected);
    expect((error as Error).message).toMatch(/: .*(must|should|not)/);
  });

  it('shows store.url with its password masked, in the user:password@ part and in a password= parameter', () => {
    expect(() =>
      resolveOptions({ store: { type: 'redis', url: 'http://app:s3cret@x/?db=1&password=s3cret' } }),
    ).toThrow(/store\.url = "http:\/\/app:\*\*\*@x\/\?db=1&password=\*\*\*"(?![\s\S]*s3cret)/);
  });

  it('rejects an option that does not exist', () => {
    expect(() => resolveOptions({ worker: { concurrency: 5 } } as never)).toThrow(
      'worker.concurrency: there is no such option',
    );
    expect(() => resolveOptions({ workers: {} } as never)).toThrow('workers: there is no such option');
  });

  it.each([
    [0, 'health.unhandledJobsAfterMs = 0: it must not be less than 1'],
    [1.5, 'health.unhandledJobsAfterMs = 1.5: it must be an integer number'],
  ])('refuses health.unhandledJobsAfterMs = %p, naming the option, the value and the rule', (value, expected) => {
    expect(() => resolveOptions({ health: { unhandledJobsAfterMs: value } })).toThrow(expected);
  });

  it('lists every invalid option at once', () => {
    expect(() => resolveOptions({ worker: { pollingIntervalMs: -1, batchSize: 0 } })).toThrow(
      /pollingIntervalMs = -1[\s\S]*batchSize = 0|batchSize = 0[\s\S]*pollingIntervalMs = -1/,
    );
  });

  it.each([
    [
      { type: 'redis', uri: 'redis://db:6379' },
      'store.uri: there is no such option for the redis store (allowed: type, url, options, client, cluster, keyPrefix, partitions, waitForReplicas)',
    ],
    [
      { type: 'memory', url: 'redis://db:6379' },
      'store.url: there is no such option for the memory store (allowed: type',
    ],
  ])('refuses the unknown store key in %j, naming it and the allowed keys', (store, expected) => {
    expect(() => resolveOptions({ store } as never)).toThrow(expected);
  });

  it.each(['worker', 'jobManager', 'recovery', 'retention', 'http', 'health'])(
    'refuses %s: null with the usual message, not a TypeError',
    (group) => {
      expect(() => resolveOptions({ [group]: null } as never)).toThrow(
        `${group} = null: must be an object of ${group} options, or left out for the defaults`,
      );
    },
  );

  it('still checks the other groups when one is not an object', () => {
    expect(() => resolveOptions({ worker: null, http: { retryAfterSeconds: -1 } } as never)).toThrow(
      /worker = null: must be an object[\s\S]*http\.retryAfterSeconds = -1/,
    );
  });

  it('names the option, the string and the fix in one message for a number given as a string', () => {
    let error: unknown;
    try {
      resolveOptions({ worker: { maximumConcurrency: '4' } } as never);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(InvalidAsyncEndpointsOptionsError);
    expect((error as InvalidAsyncEndpointsOptionsError).problems).toEqual([
      'worker.maximumConcurrency = "4": must be a number, not a string; convert it, e.g. Number(process.env.X)',
    ]);
  });

  it('takes the dashboard path without its outer slashes', () => {
    expect(resolveOptions({ dashboard: { enabled: true, path: '/ops/jobs/' } }).dashboard.path).toBe('ops/jobs');
  });

  it('names each invalid dashboard option with its value and rule', () => {
    let error: unknown;
    try {
      resolveOptions({
        dashboard: { enabled: 'yes', path: 'admin/:id', readOnly: 1, guards: [42], hidePayloads: 'no' },
      } as never);
    } catch (caught) {
      error = caught;
    }
    expect((error as InvalidAsyncEndpointsOptionsError).problems).toEqual([
      'dashboard.enabled = "yes": it must be a boolean value',
      'dashboard.path = "admin/:id": it must be a URL path such as "admin/jobs"',
      'dashboard.readOnly = 1: it must be a boolean value',
      'dashboard.guards = [42]: each guard must be a guard class or an object with a canActivate method',
      'dashboard.hidePayloads = "no": it must be a boolean value',
    ]);
  });
});
