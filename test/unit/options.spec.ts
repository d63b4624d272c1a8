import { availableParallelism } from 'node:os';
import { InvalidAsyncEndpointsOptionsError, MemoryJobStore, resolveOptions } from '../../lib/index.js';

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
      recovery: { enableDistributedJobRecovery: true, recoveryCheckIntervalSeconds: 15, jobTimeoutMinutes: 60, maximumRetries: 2 },
      retention: { completedTtlSeconds: 86_400, failedTtlSeconds: 604_800 },
      http: {
        jobsPath: 'jobs',
        retryAfterSeconds: 1,
        pendingStatusCode: 200,
        captureHeaders: {},
        exposeErrorDetails: false,
        bodyLimitBytes: 1_048_576,
        maxJsonDepth: 64,
      },
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
    [{ http: { captureHeaders: { include: 'authorization' } } }, 'http.captureHeaders.include = "authorization"'],
    [{ store: { type: 'postgres' } }, "store.type = \"postgres\": must be 'memory' or 'redis'"],
    [{ store: { type: 'redis', url: 'http://x' } }, 'store.url = "http://x": must start with redis:// or rediss://'],
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

  it('rejects an option that does not exist', () => {
    expect(() => resolveOptions({ worker: { concurrency: 5 } } as never)).toThrow(
      'worker.concurrency: there is no such option',
    );
    expect(() => resolveOptions({ workers: {} } as never)).toThrow('workers: there is no such option');
  });

  it('lists every invalid option at once', () => {
    expect(() => resolveOptions({ worker: { pollingIntervalMs: -1, batchSize: 0 } })).toThrow(
      /pollingIntervalMs = -1[\s\S]*batchSize = 0|batchSize = 0[\s\S]*pollingIntervalMs = -1/,
    );
  });
});
