import { Controller, type INestApplication, Injectable, Post } from '@nestjs/common';
import { trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import request from 'supertest';
import {
  AsyncEndpoint,
  AsyncHandler,
  NonRetryableError,
  type AsyncEndpointHandler,
  type AsyncEndpointsModuleOptions,
} from '../../lib/index.js';
import { rawStoreContents } from '../support/raw-store.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { waitFor } from '../support/sample-app.js';
import { startTestApp } from '../support/test-app.js';
import { STORE_KINDS, TestStores } from '../support/test-stores.js';

const PASSWORD = 'hunter2-db-password';

@Controller('fail')
class FailController {
  @Post('internal')
  @AsyncEndpoint('Internal')
  internal(): void {}

  @Post('public')
  @AsyncEndpoint('Public')
  public(): void {}
}

/** Fails as a database driver does: the message names the host and the credentials. */
@AsyncHandler('Internal', { maxRetries: 0 })
@Injectable()
class InternalFailure implements AsyncEndpointHandler {
  handle(): never {
    throw Object.assign(new Error(`connect ECONNREFUSED 10.1.2.3:5432 user=app password=${PASSWORD}`), {
      code: 'ECONNREFUSED',
    });
  }
}

@AsyncHandler('Public')
@Injectable()
class PublicFailure implements AsyncEndpointHandler {
  handle(): never {
    throw new NonRetryableError('Invoice 42 is already paid', 'ALREADY_PAID');
  }
}

describe.each(STORE_KINDS)('handler error details (%s store)', (kind) => {
  const stores = new TestStores(kind);
  const exporter = new InMemorySpanExporter();
  const apps: INestApplication[] = [];

  beforeAll(() => {
    trace.setGlobalTracerProvider(new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] }));
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
    exporter.reset();
  });
  afterAll(async () => {
    await stores.dispose();
    trace.disable();
  });

  /** Runs one job of the route to Failed; returns its document, the raw store, the log and the span messages. */
  async function failedJob(route: 'internal' | 'public', options: AsyncEndpointsModuleOptions = {}) {
    const storeConfig = await stores.options();
    const logger = new RecordingLogger();
    const app = await startTestApp(
      { store: storeConfig, ...options },
      {
        controllers: [FailController],
        providers: [InternalFailure, PublicFailure],
        configure: (a) => a.useLogger(logger),
      },
    );
    apps.push(app);
    const http = () => request(app.getHttpServer());
    const submitted = await http().post(`/fail/${route}`).expect(202);
    const document = await waitFor(async () => {
      const { body } = await http().get(submitted.headers.location!).expect(200);
      return body.status === 'Failed' ? body : undefined;
    });
    const raw = await rawStoreContents(app, storeConfig);
    const log = logger.entries.map((entry) => entry.message).join('\n');
    const spans = exporter
      .getFinishedSpans()
      .map((span) => span.status.message ?? '')
      .join('\n');
    return { document, raw, log, spans };
  }

  it('by default keeps an internal message and the stack out of the document, the raw store, the log and the trace, and keeps the code', async () => {
    const { document, raw, log, spans } = await failedJob('internal');
    expect(document.error).toEqual({ code: 'ECONNREFUSED', message: 'The handler failed (ECONNREFUSED).' });
    expect(raw).toContain('The handler failed (ECONNREFUSED).');
    for (const text of [raw, log, spans]) {
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain('10.1.2.3');
    }
    // No stack frame stored.
    expect(raw).not.toMatch(/\bat \S+ \(/);
    expect(log).toContain('Failed (ECONNREFUSED)');
    expect(spans).toContain('The handler failed (ECONNREFUSED).');
  });

  it("shows a NonRetryableError's message, as it is public", async () => {
    const { document, raw, log } = await failedJob('public');
    expect(document.error).toEqual({ code: 'ALREADY_PAID', message: 'Invoice 42 is already paid' });
    expect(raw).toContain('Invoice 42 is already paid');
    expect(log).toContain('Invoice 42 is already paid');
  });

  it('with exposeErrorDetails stores and shows the message, type and stack', async () => {
    const { document, raw } = await failedJob('internal', { http: { exposeErrorDetails: true } });
    expect(document.error).toMatchObject({
      code: 'ECONNREFUSED',
      message: expect.stringContaining(PASSWORD),
      type: 'Error',
      stack: expect.stringContaining('ECONNREFUSED'),
    });
    expect(raw).toContain(PASSWORD);
  });
});
