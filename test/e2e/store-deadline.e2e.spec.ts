import { Injectable, type INestApplication } from '@nestjs/common';
import {
  AsyncEndpointsService,
  AsyncHandler,
  MemoryJobStore,
  StoreUnavailableError,
  type AsyncEndpointHandler,
  type CreateJobOptions,
  type CreateJobResult,
  type Job,
  type NewJob,
} from '../../lib/index.js';
import { startTestApp } from '../support/test-app.js';

/** A custom store whose calls stop answering once `hang` is set. */
class HangingStore extends MemoryJobStore {
  hang = false;
  override createJob(job: NewJob, options: CreateJobOptions): Promise<CreateJobResult> {
    return this.hang ? new Promise(() => undefined) : super.createJob(job, options);
  }
  override getJob(id: string): Promise<Job | null> {
    return this.hang ? new Promise(() => undefined) : super.getJob(id);
  }
}

@AsyncHandler('Noop')
@Injectable()
class NoopHandler implements AsyncEndpointHandler {
  handle() {
    return null;
  }
}

describe('Store calls on the request path', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('answer StoreUnavailableError after 2 s (and under 4 s) when the store does not answer, saying whether a write may have happened', async () => {
    const store = new HangingStore();
    app = await startTestApp({ store, worker: { enabled: false } }, { providers: [NoopHandler] });
    const service = app.get(AsyncEndpointsService);
    const { id } = await service.submit('Noop');
    store.hang = true;

    const started = performance.now();
    const [submit, read] = await Promise.allSettled([service.submit('Noop'), service.get(id)]);
    const elapsedMs = performance.now() - started;

    expect(submit).toMatchObject({
      status: 'rejected',
      reason: { message: expect.stringContaining('submit got no answer within 2000 ms'), outcomeUnknown: true },
    });
    expect(read).toMatchObject({
      status: 'rejected',
      reason: { message: expect.stringContaining('read got no answer within 2000 ms'), outcomeUnknown: false },
    });
    expect((submit as PromiseRejectedResult).reason).toBeInstanceOf(StoreUnavailableError);
    expect(elapsedMs).toBeGreaterThanOrEqual(1990);
    expect(elapsedMs).toBeLessThan(4000);

    // Calls that answer in time are not touched by the deadlines of those that did not.
    store.hang = false;
    await expect(service.get(id)).resolves.toMatchObject({ id, status: 'Queued' });
  });
});
