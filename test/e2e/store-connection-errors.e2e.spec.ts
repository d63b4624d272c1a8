import { type INestApplication } from '@nestjs/common';
import request from 'supertest';
import { MemoryJobStore, type Job } from '../../lib/index.js';
import { startTestApp } from '../support/test-app.js';

const ID = '0b6f5c1e-8d5a-4a47-9a43-2f1d3c4b5a69';

/** A custom store whose reads fail with the error it is given. */
class FailingStore extends MemoryJobStore {
  failure: Error | undefined;
  override getJob(id: string): Promise<Job | null> {
    return this.failure ? Promise.reject(this.failure) : super.getJob(id);
  }
}

describe('A store error on the request path is told apart by its code, not its words', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  const statusOf = async (store: MemoryJobStore, afterBoot = () => Promise.resolve()) => {
    app = await startTestApp({ store, worker: { enabled: false } }, {});
    await afterBoot();
    const response = await request(app.getHttpServer()).get(`/jobs/${ID}`);
    return { status: response.status, type: response.headers['content-type'] as string };
  };

  it("answers 503 problem+json for a custom store's network error (code ECONNREFUSED)", async () => {
    const store = new FailingStore();
    store.failure = Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:5432'), { code: 'ECONNREFUSED' });
    expect(await statusOf(store)).toEqual({ status: 503, type: expect.stringContaining('application/problem+json') });
  });

  it('answers 503 problem+json for a store that was closed (the app shutting down)', async () => {
    const store = new MemoryJobStore();
    expect(await statusOf(store, () => store.close())).toEqual({
      status: 503,
      type: expect.stringContaining('application/problem+json'),
    });
  });

  it("answers 500 for a store's own error whose message only mentions a connection", async () => {
    const store = new FailingStore();
    store.failure = new Error('row not found in connection_settings');
    expect(await statusOf(store)).toEqual({ status: 500, type: expect.stringContaining('application/problem+json') });
  });
});
