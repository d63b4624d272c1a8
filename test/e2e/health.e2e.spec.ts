import { Injectable, type INestApplication } from '@nestjs/common';
import {
  AsyncEndpointsHealthIndicator,
  AsyncEndpointsService,
  AsyncHandler,
  MemoryJobStore,
  type AsyncEndpointHandler,
  type ClaimedJob,
  type ClaimOptions,
} from '../../lib/index.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { startTestApp } from '../support/test-app.js';
import { STORE_KINDS, TestStores } from '../support/test-stores.js';

@AsyncHandler('Noop')
@Injectable()
class NoopHandler implements AsyncEndpointHandler {
  handle() {}
}

describe.each(STORE_KINDS)('Health indicator (%s store)', (kind) => {
  const stores = new TestStores(kind);
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });
  afterAll(() => stores.dispose());

  it('reports up with ping latency, counts, the oldest waiting age and a live worker loop', async () => {
    app = await startTestApp({ store: await stores.options() }, { providers: [NoopHandler] });
    const result = await app.get(AsyncEndpointsHealthIndicator).isHealthy();
    expect(result['async-endpoints']).toMatchObject({
      status: 'up',
      store: kind,
      pingMs: expect.any(Number),
      waiting: 0,
      inProgress: 0,
      oldestWaitingAgeMs: null,
      worker: {
        enabled: true,
        stalled: false,
        active: 0,
        lastLoopAt: expect.any(String),
        workerId: expect.any(String),
      },
    });
    if (kind === 'redis') {
      expect(result['async-endpoints']).toMatchObject({ evictionPolicy: 'noeviction', evictionPolicyOk: true });
    }
  });

  it('counts waiting jobs and the age of the oldest, in an API-only process', async () => {
    app = await startTestApp(
      { store: await stores.options(), worker: { enabled: false } },
      { providers: [NoopHandler] },
    );
    const service = app.get(AsyncEndpointsService);
    await service.submit('Noop');
    await service.submit('Noop');
    await new Promise((resolve) => setTimeout(resolve, 120));
    const result = (await app.get(AsyncEndpointsHealthIndicator).isHealthy('jobs')).jobs;
    expect(result).toMatchObject({ status: 'up', waiting: 2, inProgress: 0, worker: { enabled: false } });
    expect(result.oldestWaitingAgeMs).toBeGreaterThanOrEqual(100);
  });
});

describe('Health indicator with a stalled worker loop', () => {
  /** A store whose claims stop answering once `hang` is set: the worker loop stops going round. */
  class HangingStore extends MemoryJobStore {
    hang = false;
    /** Settles at the first claim that hangs: the loop went round for the last time just before. */
    readonly hung = new Promise<void>((resolve) => (this.markHung = resolve));
    private markHung!: () => void;
    override claimDueJobs(options: ClaimOptions): Promise<ClaimedJob[]> {
      if (!this.hang) return super.claimDueJobs(options);
      this.markHung();
      return new Promise(() => undefined);
    }
  }

  it('reports down, without throwing, 5.3 s after the loop stopped going round (the threshold is 5 s at a 100 ms poll)', async () => {
    const store = new HangingStore();
    const app = await startTestApp(
      { store, worker: { pollingIntervalMs: 100, shutdownTimeoutMs: 200 } },
      { providers: [NoopHandler] },
    );
    try {
      const health = app.get(AsyncEndpointsHealthIndicator);
      expect((await health.isHealthy())['async-endpoints'].status).toBe('up');
      store.hang = true;
      await store.hung;
      await new Promise((resolve) => setTimeout(resolve, 5300));
      const result = (await health.isHealthy())['async-endpoints'];
      expect(result).toMatchObject({
        status: 'down',
        message: 'The worker loop has stalled',
        worker: { stalled: true },
      });
    } finally {
      // The shutdown does not wait for the hung claim longer than shutdownTimeoutMs.
      await app.close();
    }
  }, 15_000);
});

describe('Health indicator with an unreachable store', () => {
  class UnreachableStore extends MemoryJobStore {
    override ping(): Promise<void> {
      return Promise.reject(new Error('connect ECONNREFUSED 10.1.2.3:6379 (user=app password=hunter2)'));
    }
  }
  let app: INestApplication | undefined;
  afterEach(() => app?.close());

  it('reports down with a generic message, never the store error text (hosts, credentials), which it logs once a minute', async () => {
    const logger = new RecordingLogger();
    app = await startTestApp(
      { store: new UnreachableStore(), worker: { enabled: false } },
      { providers: [NoopHandler], configure: (nest) => nest.useLogger(logger) },
    );
    const indicator = app.get(AsyncEndpointsHealthIndicator);
    const result = (await indicator.isHealthy())['async-endpoints'];
    await indicator.isHealthy();
    expect(result).toMatchObject({ status: 'down', message: 'Job store unreachable' });
    expect(JSON.stringify(result)).not.toMatch(/10\.1\.2\.3|hunter2|ECONNREFUSED/);
    const logged = logger.messages('warn').filter((message) => message.startsWith('Health check'));
    expect(logged).toEqual([expect.stringContaining('connect ECONNREFUSED 10.1.2.3:6379')]);
  });
});
