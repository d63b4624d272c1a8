import { Injectable, type INestApplication } from '@nestjs/common';
import {
  AsyncEndpointsService,
  AsyncHandler,
  MemoryJobStore,
  type AsyncEndpointHandler,
  type FailOptions,
  type FailOutcome,
  type JobError,
  type Lease,
} from '../../lib/index.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { waitFor } from '../support/sample-app.js';
import { startTestApp } from '../support/test-app.js';

@AsyncHandler('AlwaysFails', { maxRetries: 0 })
@Injectable()
class AlwaysFailsHandler implements AsyncEndpointHandler {
  handle(): never {
    throw new Error('downstream broke');
  }
}

/** A store that cannot record failed attempts (it went down between the claim and the outcome). */
class FailJobBrokenStore extends MemoryJobStore {
  override failJob(_lease: Lease, _error: JobError, _options: FailOptions): Promise<FailOutcome> {
    return Promise.reject(new Error('store went away while recording the failure'));
  }
}

describe('Worker when the store cannot record an attempt', () => {
  let app: INestApplication | undefined;
  afterEach(() => app?.close());

  it('logs that the failed attempt could not be recorded (recovery takes the job back later) and keeps working', async () => {
    const logger = new RecordingLogger();
    app = await startTestApp(
      { store: new FailJobBrokenStore(), worker: { pollingIntervalMs: 50, shutdownTimeoutMs: 100 } },
      { providers: [AlwaysFailsHandler], configure: (nest) => nest.useLogger(logger) },
    );
    const service = app.get(AsyncEndpointsService);
    const { id } = await service.submit('AlwaysFails', {});

    const logged = await waitFor(async () =>
      logger.messages('error').find((message) => message.includes(id) && message.includes('Could not record')),
    );
    expect(logged).toContain(
      "Could not record the attempt's outcome (threw): store went away while recording the failure",
    );
    expect((await service.get(id))?.status).toBe('InProgress');
  });
});
