import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { JobStore } from '../../lib/index.js';
import { rawStoreContents } from '../support/raw-store.js';
import { startSampleApp, waitFor } from '../support/sample-app.js';
import { STORE_KINDS, TestStores } from '../support/test-stores.js';

describe.each(STORE_KINDS)('retention.dropPayloadOnFinish over HTTP (%s store)', (kind) => {
  const stores = new TestStores(kind);
  let app: INestApplication;

  afterEach(() => app?.close());
  afterAll(() => stores.dispose());

  it('leaves a completed job its result but not its payload or captured headers, in the raw store too', async () => {
    const storeConfig = await stores.options();
    app = await startSampleApp({ store: storeConfig, retention: { dropPayloadOnFinish: true } });
    const http = () => request(app.getHttpServer());
    const submitted = await http()
      .post('/api/process')
      .set('X-Tenant', 'tenant-value-8c1d')
      .send({ data: 'payload-value-3e7f' })
      .expect(202);
    const done = await waitFor(async () => {
      const { body } = await http().get(submitted.headers.location!).expect(200);
      return body.status === 'Completed' ? body : undefined;
    });
    expect(done.result).toEqual({ processed: 'PAYLOAD-VALUE-3E7F', length: 18 });
    expect((await app.get(JobStore).getJob(submitted.body.id))!).toMatchObject({ payload: null, headers: {} });
    const raw = await rawStoreContents(app, storeConfig);
    expect(raw).not.toContain('payload-value-3e7f');
    expect(raw).not.toContain('tenant-value-8c1d');
  });
});

describe('memory store caps over HTTP', () => {
  let app: INestApplication;
  afterEach(() => app?.close());

  it('answers 503 problem+json with Retry-After when live jobs fill store.maxRetainedJobs, and keeps them', async () => {
    app = await startSampleApp({ store: { type: 'memory', maxRetainedJobs: 2 }, worker: { enabled: false } });
    const http = () => request(app.getHttpServer());
    const accepted = [];
    for (const data of ['a', 'b']) accepted.push((await http().post('/api/process').send({ data }).expect(202)).body.id);
    const refused = await http().post('/api/process').send({ data: 'c' }).expect(503);
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.body.detail).toContain('store.maxRetainedJobs');
    for (const id of accepted) expect((await app.get(JobStore).getJob(id))!.status).toBe('Queued');
  });
});
