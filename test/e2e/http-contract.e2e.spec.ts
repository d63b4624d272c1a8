import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Body, Controller, type INestApplication, Injectable, Param, Put } from '@nestjs/common';
import request from 'supertest';
import {
  AsyncEndpoint,
  AsyncEndpointsService,
  AsyncHandler,
  JobStore,
  type AsyncEndpointHandler,
  type AsyncEndpointsModuleOptions,
} from '../../lib/index.js';
import { rawStoreContents } from '../support/raw-store.js';
import { startSampleApp, waitFor } from '../support/sample-app.js';
import { startTestApp } from '../support/test-app.js';
import { PLATFORMS, PLATFORMS_AND_STORES } from '../support/test-platforms.js';
import { TestStores } from '../support/test-stores.js';

const UNKNOWN_ID = '3f0c2a8e-5b7d-4c1e-9a2b-1d2e3f4a5b6c';

/** The owner is the `X-User-Id` header: enough to tell two clients apart in these tests. */
const ownerFromHeader: AsyncEndpointsModuleOptions['jobOwner'] = (req) => {
  const user = req.headers['x-user-id'];
  return typeof user === 'string' ? user : undefined;
};

describe.each(PLATFORMS_AND_STORES)('HTTP contract (%s, %s store)', (platform, kind) => {
  const stores = new TestStores(kind);
  const apps: INestApplication[] = [];

  /** A sample app on this platform and a fresh store; closed after each test. */
  async function start(options: AsyncEndpointsModuleOptions = {}) {
    const store = await stores.options();
    const app = await startSampleApp({ store, ...options }, undefined, platform);
    apps.push(app);
    return { app, http: () => request(app.getHttpServer()), store: app.get(JobStore), storeConfig: store };
  }

  const storedJobs = async (store: JobStore) =>
    Object.values((await store.stats(Date.now())).counts).reduce((sum, count) => sum + count, 0);

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(() => stores.dispose());

  describe('idempotency', () => {
    const workersOff = { worker: { enabled: false }, jobOwner: ownerFromHeader };

    it('replays an Idempotency-Key: 202 with the same job, its current document, nothing new stored', async () => {
      const { http, store } = await start(workersOff);
      const first = await http()
        .post('/api/process')
        .set('Idempotency-Key', 'order-1')
        .send({ data: 'once' })
        .expect(202);
      await http().delete(first.headers.location!).expect(200);
      const before = await storedJobs(store);

      const replay = await http()
        .post('/api/process')
        .set('Idempotency-Key', 'order-1')
        .send({ data: 'once' })
        .expect(202);
      expect(replay.body).toMatchObject({ id: first.body.id, status: 'Canceled' });
      expect(replay.headers.location).toBe(first.headers.location);
      expect(replay.headers['retry-after']).toBe('1');
      expect(await storedJobs(store)).toBe(before);
    });

    it('answers 422 to the same Idempotency-Key with another payload, and stores nothing', async () => {
      const { http, store } = await start(workersOff);
      await http().post('/api/process').set('Idempotency-Key', 'order-2').send({ data: 'a' }).expect(202);
      const before = await storedJobs(store);
      const conflict = await http()
        .post('/api/process')
        .set('Idempotency-Key', 'order-2')
        .send({ data: 'b' })
        .expect(422);
      expect(conflict.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(conflict.body).toMatchObject({
        status: 422,
        title: 'Unprocessable Entity',
        detail: expect.stringContaining('idempotency key'),
      });
      expect(await storedJobs(store)).toBe(before);
    });

    it('scopes an Idempotency-Key by endpoint and by owner', async () => {
      const { http } = await start(workersOff);
      const submit = (path: string, user: string, body: object = {}) =>
        http().post(path).set('Idempotency-Key', 'shared').set('X-User-Id', user).send(body).expect(202);
      const alice = await submit('/api/process', 'alice', { data: 'x' });
      const bob = await submit('/api/process', 'bob', { data: 'x' });
      const aliceReport = await submit('/api/generate-report', 'alice');
      expect(new Set([alice.body.id, bob.body.id, aliceReport.body.id]).size).toBe(3);
      expect((await submit('/api/process', 'alice', { data: 'x' })).body.id).toBe(alice.body.id);
    });

    it('replays a submit that names the id of a job submitted without one: same payload 202, another 422', async () => {
      const { http, store } = await start(workersOff);
      const first = await http().post('/api/process').send({ data: 'plain' }).expect(202);
      const before = await storedJobs(store);

      const replay = await http()
        .post('/api/process')
        .set('X-Async-Request-Id', first.body.id)
        .send({ data: 'plain' })
        .expect(202);
      expect(replay.body.id).toBe(first.body.id);
      await http().post('/api/process').set('X-Async-Request-Id', first.body.id).send({ data: 'other' }).expect(422);
      expect(await storedJobs(store)).toBe(before);
    });

    it('uses X-Async-Request-Id as the job id: replay 202, another payload or endpoint 422, not a UUID 400', async () => {
      const { http, store } = await start(workersOff);
      const id = '0b6c5a3e-2f4d-4e8a-9c1b-7d6e5f4a3b2c';
      const first = await http()
        .post('/api/process')
        .set('X-Async-Request-Id', id.toUpperCase())
        .send({ data: 'by id' })
        .expect(202);
      expect(first.body.id).toBe(id);
      expect(first.headers.location).toBe(`/jobs/${id}`);
      const before = await storedJobs(store);

      const replay = await http()
        .post('/api/process')
        .set('X-Async-Request-Id', id)
        .send({ data: 'by id' })
        .expect(202);
      expect(replay.body.id).toBe(id);
      await http().post('/api/process').set('X-Async-Request-Id', id).send({ data: 'other' }).expect(422);
      await http().post('/api/generate-report').set('X-Async-Request-Id', id).expect(422);
      const malformed = await http()
        .post('/api/process')
        .set('X-Async-Request-Id', 'order-42')
        .send({ data: 'x' })
        .expect(400);
      expect(malformed.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(malformed.body.detail).toContain('X-Async-Request-Id must be a UUID');
      const badKey = await http()
        .post('/api/process')
        .set('Idempotency-Key', 'x'.repeat(256))
        .send({ data: 'x' })
        .expect(400);
      expect(badKey.body.detail).toContain('Idempotency-Key must be 1 to 255');
      expect(await storedJobs(store)).toBe(before);
    });

    it('keeps a key as long as its job: after the retention period it makes a new job', async () => {
      const { http } = await start({ ...workersOff, retention: { completedTtlSeconds: 0.3 } });
      const submit = () =>
        http().post('/api/process').set('Idempotency-Key', 'short-lived').send({ data: 'x' }).expect(202);
      const first = await submit();
      await http().delete(first.headers.location!).expect(200);
      expect((await submit()).body.id).toBe(first.body.id);
      await waitFor(async () => ((await http().get(first.headers.location!)).status === 404 ? true : undefined), 5_000);
      const later = await submit();
      expect(later.body.id).not.toBe(first.body.id);
      expect(later.body.status).toBe('Queued');
    });
  });

  describe('owners', () => {
    it('records the owner; another owner gets 404 on GET and DELETE, exactly like an unknown id', async () => {
      const { app, http, store } = await start({ worker: { enabled: false }, jobOwner: ownerFromHeader });
      const submitted = await http().post('/api/process').set('X-User-Id', 'alice').send({ data: 'mine' }).expect(202);
      const location = submitted.headers.location!;
      const id = submitted.body.id as string;
      expect((await store.getJob(id))!.owner).toBe('alice');

      const unknown = await http().get(`/jobs/${UNKNOWN_ID}`).set('X-User-Id', 'bob').expect(404);
      const sameShape = (body: Record<string, unknown>, jobId: string) =>
        JSON.stringify(body).replaceAll(jobId, '<id>');
      for (const user of ['bob', undefined]) {
        const read = http().get(location);
        const cancel = http().delete(location);
        if (user) {
          read.set('X-User-Id', user);
          cancel.set('X-User-Id', user);
        }
        const [readAnswer, cancelAnswer] = [await read.expect(404), await cancel.expect(404)];
        expect(sameShape(readAnswer.body, id)).toBe(sameShape(unknown.body, UNKNOWN_ID));
        expect(cancelAnswer.body).toMatchObject({ status: 404, detail: readAnswer.body.detail });
        await http().get(`${location}?waitSeconds=5`).set('X-User-Id', 'bob').expect(404);
      }
      expect((await store.getJob(id))!.status).toBe('Queued');
      expect(await app.get(AsyncEndpointsService).get(id, { owner: 'bob' })).toBeNull();

      await http().get(location).set('X-User-Id', 'alice').expect(200);
      const canceled = await http().delete(location).set('X-User-Id', 'alice').expect(200);
      expect(canceled.body.status).toBe('Canceled');
    });

    it('lets anyone with the id read a job submitted without an owner', async () => {
      const { http, store } = await start({ worker: { enabled: false }, jobOwner: ownerFromHeader });
      const submitted = await http().post('/api/process').send({ data: 'public' }).expect(202);
      expect((await store.getJob(submitted.body.id))!.owner).toBeNull();
      await http().get(submitted.headers.location!).set('X-User-Id', 'bob').expect(200);
    });
  });

  describe('captured headers', () => {
    const secrets = {
      Authorization: 'Bearer authz-secret-4f1d',
      Cookie: 'sid=cookie-secret-9a7e',
      'Proxy-Authorization': 'Basic proxy-secret-2c8b',
      'X-Api-Key': 'apikey-secret-6e3a',
    };

    async function submitWithSecrets(options: AsyncEndpointsModuleOptions) {
      const started = await start({ worker: { enabled: false }, ...options });
      const submitted = await started
        .http()
        .post('/api/generate-report')
        .set(secrets)
        .set('X-Tenant', 'tenant-value-5b2f')
        .set('X-Trace-Note', 'note-value-1d9c')
        .expect(202);
      const raw = await rawStoreContents(started.app, started.storeConfig);
      const headers = (await started.store.getJob(submitted.body.id))!.headers;
      return { raw, headers };
    }

    it('never stores Authorization, Cookie, Proxy-Authorization or X-Api-Key: the raw store holds neither', async () => {
      const { raw, headers } = await submitWithSecrets({});
      // The dump does see the headers that are stored...
      expect(raw).toContain('tenant-value-5b2f');
      // ...and no credential, under any key.
      for (const value of Object.values(secrets)) expect(raw).not.toContain(value.split(/[ =]/).pop()!);
      expect(headers).toMatchObject({ 'x-tenant': 'tenant-value-5b2f', 'x-trace-note': 'note-value-1d9c' });
      for (const name of ['authorization', 'cookie', 'proxy-authorization', 'x-api-key', 'set-cookie']) {
        expect(headers).not.toHaveProperty(name);
      }
    });

    it('stores only the headers an include list names, a sensitive one only when named', async () => {
      const { raw, headers } = await submitWithSecrets({
        http: { captureHeaders: { include: ['Authorization', 'x-tenant'] } },
      });
      expect(headers).toEqual({ authorization: secrets.Authorization, 'x-tenant': 'tenant-value-5b2f' });
      expect(raw).toContain('authz-secret-4f1d');
      expect(raw).not.toContain('cookie-secret-9a7e');
      expect(raw).not.toContain('note-value-1d9c');
    });

    it('drops the headers an exclude list names, and still no credential', async () => {
      const { raw, headers } = await submitWithSecrets({ http: { captureHeaders: { exclude: ['X-Tenant'] } } });
      expect(headers).toMatchObject({ 'x-trace-note': 'note-value-1d9c' });
      expect(headers).not.toHaveProperty('x-tenant');
      expect(raw).not.toContain('tenant-value-5b2f');
      expect(raw).not.toContain('authz-secret-4f1d');
    });
  });

  describe('http.exposeErrorDetails', () => {
    const failing = { jobManager: { retryDelayBaseSeconds: 0.01 } };

    async function failedJob(options: AsyncEndpointsModuleOptions) {
      const { http } = await start({ ...failing, ...options });
      const submitted = await http().post('/api/flaky').send({ failTimes: 10 }).expect(202);
      return waitFor(async () => {
        const { body } = await http().get(submitted.headers.location!).expect(200);
        return body.status === 'Failed' ? body : undefined;
      });
    }

    it('is off by default: the document has the error code and message, no type, no stack', async () => {
      const done = await failedJob({});
      expect(done.error).toEqual({ code: 'FLAKY_FAILURE', message: 'Attempt 4 fails on purpose (failTimes: 10)' });
      expect(JSON.stringify(done)).not.toMatch(/FlakyError|\bat \S+ \(/);
    });

    it('adds the exception type and stack when on', async () => {
      const done = await failedJob({ http: { exposeErrorDetails: true } });
      expect(done.error).toMatchObject({
        code: 'FLAKY_FAILURE',
        type: 'FlakyError',
        stack: expect.stringContaining('Attempt 4 fails on purpose'),
      });
    });
  });

  describe('http.pendingStatusCode', () => {
    it('202 answers pending jobs 202 + Location + Retry-After, terminal ones 200', async () => {
      const { http } = await start({ worker: { enabled: false }, http: { pendingStatusCode: 202 } });
      const submitted = await http().post('/api/process').send({ data: 'lro' }).expect(202);
      const location = submitted.headers.location!;
      const pending = await http().get(location).expect(202);
      expect(pending.headers.location).toBe(location);
      expect(pending.headers['retry-after']).toBe('1');
      expect(pending.headers['cache-control']).toBe('no-store');
      expect(pending.body.status).toBe('Queued');

      await http().delete(location).expect(200);
      const terminal = await http().get(location).expect(200);
      expect(terminal.body.status).toBe('Canceled');
      expect(terminal.headers).not.toHaveProperty('retry-after');
      expect(terminal.headers).not.toHaveProperty('location');
    });

    it('200 (the default) answers pending jobs 200 with Retry-After and no Location', async () => {
      const { http } = await start({ worker: { enabled: false } });
      const submitted = await http().post('/api/process').send({ data: 'poll' }).expect(202);
      const pending = await http().get(submitted.headers.location!).expect(200);
      expect(pending.headers['retry-after']).toBe('1');
      expect(pending.headers).not.toHaveProperty('location');
    });
  });
});

@Controller('v1/items')
class ItemsController {
  @Put(':itemId')
  @AsyncEndpoint('StoreItem')
  store(@Body() _item: object, @Param('itemId') _itemId: string): void {}
}

@AsyncHandler('StoreItem')
@Injectable()
class StoreItemHandler implements AsyncEndpointHandler {
  handle() {}
}

describe.each(PLATFORMS)('Request bodies of async endpoints (%s)', (platform) => {
  const apps: INestApplication[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  async function start(options: AsyncEndpointsModuleOptions = {}, configure?: (app: INestApplication) => void) {
    const app = await startTestApp(
      { worker: { enabled: false }, ...options },
      { controllers: [ItemsController], providers: [StoreItemHandler], platform, configure },
    );
    apps.push(app);
    return () => request(app.getHttpServer());
  }

  const body = (bytes: number) => JSON.stringify({ data: 'x'.repeat(bytes) });

  it('applies http.bodyLimitBytes, lowered or raised past the platform default, to routes with parameters', async () => {
    const small = await start({ http: { bodyLimitBytes: 1_000 } });
    await small().put('/v1/items/1').set('Content-Type', 'application/json').send(body(900)).expect(202);
    const tooLarge = await small()
      .put('/v1/items/1')
      .set('Content-Type', 'application/json')
      .send(body(1_100))
      .expect(413);
    expect(tooLarge.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(tooLarge.body).toMatchObject({
      status: 413,
      detail: 'The request body is larger than 1000 bytes, the limit set by http.bodyLimitBytes.',
      instance: '/v1/items/1',
    });

    const large = await start({ http: { bodyLimitBytes: 3 * 1024 * 1024 } });
    await large()
      .put('/v1/items/2')
      .set('Content-Type', 'application/json')
      .send(body(2 * 1024 * 1024))
      .expect(202);
  });

  it('applies it under a global prefix, also when another route was registered before the prefix was set', async () => {
    const http = await start({ http: { bodyLimitBytes: 1_000 } }, (app) => {
      app.getHttpAdapter().get('/ping', (_request: unknown, reply: { send(body: string): void }) => reply.send('pong'));
      app.setGlobalPrefix('v2');
    });
    await http().put('/v2/v1/items/1').set('Content-Type', 'application/json').send(body(900)).expect(202);
    const answer = await http()
      .put('/v2/v1/items/1')
      .set('Content-Type', 'application/json')
      .send(body(1_100))
      .expect(413);
    expect(answer.body.instance).toBe('/v2/v1/items/1');
  });

  it('answers 413 to a chunked body (no Content-Length) that grows past the limit', async () => {
    await start({ http: { bodyLimitBytes: 1_000 } });
    const { port } = apps[0]!.getHttpServer().address() as AddressInfo;
    const answer = await new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
      const client = httpRequest(
        {
          host: '127.0.0.1',
          port,
          method: 'PUT',
          path: '/v1/items/1',
          headers: { 'Content-Type': 'application/json' },
        },
        (response) => {
          let text = '';
          response.on('data', (chunk: Buffer) => (text += chunk.toString()));
          response.on('end', () =>
            resolve({ status: response.statusCode!, type: response.headers['content-type']!, body: text }),
          );
        },
      );
      client.on('error', reject);
      // Sent in pieces with Transfer-Encoding: chunked.
      for (let i = 0; i < 5; i++) client.write('x'.repeat(500));
      client.end();
    });
    expect(answer.status).toBe(413);
    expect(answer.type).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(answer.body).detail).toContain('http.bodyLimitBytes');
  });

  it('answers 415 problem+json to a body of a type no parser reads', async () => {
    const http = await start();
    const answer = await http().put('/v1/items/1').set('Content-Type', 'application/xml').send('<item/>').expect(415);
    expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(answer.body.detail).toBe('This endpoint accepts application/json bodies; got application/xml.');
  });

  it('answers 400 problem+json to malformed JSON', async () => {
    const http = await start();
    const answer = await http().put('/v1/items/1').set('Content-Type', 'application/json').send('{"a":').expect(400);
    expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(answer.body).toMatchObject({
      status: 400,
      detail: expect.stringContaining('not valid JSON'),
      instance: '/v1/items/1',
    });
  });

  it(`takes an empty body with Content-Type application/json as ${platform === 'express' ? '{}' : 'a 400 (Fastify)'}`, async () => {
    const http = await start();
    const answer = await http().put('/v1/items/1').set('Content-Type', 'application/json').send('');
    if (platform === 'express') {
      expect(answer.status).toBe(202);
    } else {
      expect(answer.status).toBe(400);
      expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(answer.body.detail).toContain('empty');
    }
    // Without a Content-Type, an empty body is {} on both.
    await http().put('/v1/items/1').expect(202);
  });
});
