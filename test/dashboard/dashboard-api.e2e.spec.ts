import { type CanActivate, type ExecutionContext, Inject, Injectable, type INestApplication } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { AsyncEndpointsModule, JobStatus, JobStore, type Job } from '../../lib/index.js';
import { startTestApp } from '../support/test-app.js';
import { httpAdapter, PLATFORMS, PLATFORMS_AND_STORES, type HttpPlatform } from '../support/test-platforms.js';
import { TestStores } from '../support/test-stores.js';
import { seed } from './seed-jobs.js';

const API = '/ops/admin/jobs/api';

/** Lets a request through only with `X-Admin: yes`; a dependency of the app's, so registered as its provider. */
const ADMIN_HEADER = Symbol('ADMIN_HEADER');
@Injectable()
class AdminHeaderGuard implements CanActivate {
  constructor(@Inject(ADMIN_HEADER) private readonly header: string) {}
  canActivate(context: ExecutionContext): boolean {
    return context.switchToHttp().getRequest<{ headers: Record<string, string> }>().headers[this.header] === 'yes';
  }
}

describe.each(PLATFORMS_AND_STORES)('Dashboard API (%s, %s store)', (platform, kind) => {
  const stores = new TestStores(kind);
  let app: INestApplication;
  let store: JobStore;
  const http = () => request(app.getHttpServer());
  const post = (path: string, body: object = {}) =>
    http().post(`${API}${path}`).set('Content-Type', 'application/json').send(body);

  beforeAll(async () => {
    app = await startTestApp(
      { store: await stores.options(), worker: { enabled: false }, dashboard: { enabled: true } },
      { platform, configure: (nest) => nest.setGlobalPrefix('ops') },
    );
    store = app.get(JobStore);
  });
  afterAll(async () => {
    await app?.close();
    await stores.dispose();
  });

  it('serves the page under the global prefix with a strict Content-Security-Policy, and its script and style', async () => {
    const page = await http().get('/ops/admin/jobs').expect(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['content-security-policy']).not.toContain('unsafe-inline');
    expect(page.text).toContain('<base href="./jobs/" />');
    const script = page.text.match(/src="(assets\/dashboard\.js\?v=\w+)"/)![1];
    const style = page.text.match(/href="(assets\/dashboard\.css\?v=\w+)"/)![1];
    expect((await http().get(`/ops/admin/jobs/${script}`).expect(200)).headers['content-type']).toMatch(
      /^text\/javascript/,
    );
    expect((await http().get(`/ops/admin/jobs/${style}`).expect(200)).headers['content-type']).toMatch(/^text\/css/);
    const missing = await http().get('/ops/admin/jobs/assets/secrets.txt').expect(404);
    expect(missing.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it('lists one status newest first, filtered by name and owner, a page at a time with the cursor', async () => {
    const mine = [];
    for (let i = 0; i < 5; i++)
      mine.push(await seed(store, 'ListMe', 'Queued', { owner: i % 2 === 0 ? 'alice' : 'bob' }, Date.now() + i));
    await seed(store, 'Other', 'Queued');
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: request.Response = await http()
        .get(`${API}/jobs`)
        .query({ status: 'Queued', name: 'ListMe', limit: 2, ...(cursor ? { cursor } : {}) })
        .expect(200);
      expect(page.body.jobs.length).toBeLessThanOrEqual(2);
      for (const row of page.body.jobs) {
        expect(row).toMatchObject({ name: 'ListMe', status: 'Queued', attempts: 0, maxRetries: 3 });
        expect(row).not.toHaveProperty('payload');
      }
      seen.push(...page.body.jobs.map((row: { id: string }) => row.id));
      cursor = page.body.nextCursor;
    } while (cursor !== null);
    expect(seen).toEqual(mine.map((job) => job.id).reverse());

    const alice = await http().get(`${API}/jobs`).query({ status: 'Queued', owner: 'alice', limit: 200 }).expect(200);
    const aliceIds = new Set<string>();
    for (let page = alice.body; ;) {
      page.jobs.forEach((row: { id: string }) => aliceIds.add(row.id));
      if (page.nextCursor === null) break;
      page = (await http().get(`${API}/jobs`).query({ status: 'Queued', owner: 'alice', cursor: page.nextCursor }))
        .body;
    }
    expect([...aliceIds].sort()).toEqual(
      mine
        .filter((job) => job.owner === 'alice')
        .map((job) => job.id)
        .sort(),
    );
  });

  it('counts jobs per status and live jobs per name', async () => {
    await seed(store, 'Counted', 'Failed');
    await seed(store, 'Counted', 'Queued');
    await seed(store, 'Counted', 'Queued');
    const stats = (await http().get(`${API}/stats`).expect(200)).body;
    const direct = await store.stats(Date.now());
    expect(stats.counts).toEqual(direct.counts);
    expect(stats.counts.Failed).toBeGreaterThanOrEqual(1);
    expect(stats.names.Counted).toMatchObject({ waiting: 2, inProgress: 0 });
  });

  it('shows one job with its payload, result, error, owner, idempotency key and worker', async () => {
    const failed = await seed(store, 'Detail', 'Failed', { owner: 'carol', idempotencyKey: 'key-1' });
    const detail = (await http().get(`${API}/jobs/${failed.id}`).expect(200)).body;
    expect(detail).toMatchObject({
      id: failed.id,
      name: 'Detail',
      status: 'Failed',
      attempts: 1,
      owner: 'carol',
      idempotencyKey: 'key-1',
      error: { code: 'BOOM', message: 'it broke' },
      payload: { secret: 'payload of Detail' },
      headers: { 'content-type': 'application/json' },
    });
    const running = await seed(store, 'Detail', 'InProgress');
    expect((await http().get(`${API}/jobs/${running.id}`).expect(200)).body).toMatchObject({
      status: 'InProgress',
      attempts: 1,
      workerId: 'dashboard-test',
    });
    const completed = await seed(store, 'Detail', 'Completed');
    expect((await http().get(`${API}/jobs/${completed.id}`).expect(200)).body.result).toEqual({ done: 'Detail' });
  });

  it('retries a Failed job: 200 and Queued with a fresh attempt budget; 409 for a Queued one, 404 for an unknown id', async () => {
    const failed = await seed(store, 'Retry', 'Failed');
    const retried = await post(`/jobs/${failed.id}/retry`).expect(200);
    expect(retried.body).toMatchObject({
      outcome: 'requeued',
      job: { id: failed.id, status: 'Queued', retryCount: 0 },
    });
    expect((await store.getJob(failed.id))!.status).toBe(JobStatus.Queued);
    const again = await post(`/jobs/${failed.id}/retry`).expect(409);
    expect(again.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(again.body).toMatchObject({ status: 409, jobStatus: 'Queued' });
    await post('/jobs/3f0c2a8e-5b7d-4c1e-9a2b-1d2e3f4a5b6c/retry').expect(404);
  });

  it('cancels a Queued job whatever its owner; 409 for a finished one', async () => {
    const queued = await seed(store, 'Cancel', 'Queued', { owner: 'dave' });
    const canceled = await post(`/jobs/${queued.id}/cancel`).expect(200);
    expect(canceled.body).toMatchObject({ outcome: 'canceled', job: { status: 'Canceled' } });
    expect((await store.getJob(queued.id))!.status).toBe(JobStatus.Canceled);
    const done = await seed(store, 'Cancel', 'Completed');
    expect((await post(`/jobs/${done.id}/cancel`).expect(409)).body.jobStatus).toBe('Completed');
  });

  it('purges finished jobs of one status and name, and leaves the others', async () => {
    const old = [await seed(store, 'Purge', 'Completed'), await seed(store, 'Purge', 'Completed')];
    const failed = await seed(store, 'Purge', 'Failed');
    const otherName = await seed(store, 'KeepMe', 'Completed');
    const live = await seed(store, 'Purge', 'Queued');
    await new Promise((resolve) => setTimeout(resolve, 5)); // finished strictly before the purge's "now"
    const purged = await post('/purge', { status: 'Completed', olderThanSeconds: 0, name: 'Purge' }).expect(200);
    expect(purged.body).toMatchObject({ purged: 2, more: false });
    expect([...purged.body.ids].sort()).toEqual(old.map((job) => job.id).sort());
    for (const job of old) expect(await store.getJob(job.id)).toBeNull();
    for (const job of [failed, otherName, live]) expect(await store.getJob(job.id)).not.toBeNull();
  });

  describe('client mistakes: 4xx problem+json, every job intact', () => {
    let job: Job;
    beforeAll(async () => {
      job = await seed(store, 'Mistakes', 'Failed');
    });
    afterEach(async () => {
      expect((await store.getJob(job.id))!.status).toBe(JobStatus.Failed);
    });

    it.each([
      ['an unknown status', `${API}/jobs?status=Done`, /status must be one of Queued, Scheduled/],
      ['no status', `${API}/jobs`, /status must be one of/],
      ['a limit over 200', `${API}/jobs?status=Failed&limit=201`, /limit must be a whole number from 1 to 200/],
      ['an id that is no UUID', `${API}/jobs/not-a-uuid`, /is not a job id/],
      [
        'a cursor the list did not return',
        `${API}/jobs?status=Failed&cursor=made-up`,
        /cursor is not one this list returned/,
      ],
      [
        'a well-formed cursor whose position is not a number (a Redis ZRANGE error before)',
        `${API}/jobs?status=Failed&cursor=${Buffer.from(JSON.stringify(['abc', 'x'])).toString('base64url')}`,
        /cursor is not one this list returned/,
      ],
    ])('400 for %s', async (_, url, detail) => {
      const response = await http().get(url).expect(400);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.body.detail).toMatch(detail);
    });

    it('400 for a purge of a live status or without an age', async () => {
      expect((await post('/purge', { status: 'Queued', olderThanSeconds: 0 }).expect(400)).body.detail).toMatch(
        /live jobs are never purged/,
      );
      expect((await post('/purge', { status: 'Failed' }).expect(400)).body.detail).toMatch(/olderThanSeconds/);
    });

    it('400 problem+json for an action whose JSON body does not parse, or is nested too deep', async () => {
      const malformed = await http()
        .post(`${API}/purge`)
        .set('Content-Type', 'application/json')
        .send('{"status": "Failed",')
        .expect(400);
      expect(malformed.headers['content-type']).toMatch(/^application\/problem\+json/);
      const deep = await post('/purge', JSON.parse('['.repeat(100) + ']'.repeat(100))).expect(400);
      expect(deep.headers['content-type']).toMatch(/^application\/problem\+json/);
    });

    it('415 for an action without a JSON body (a cross-site form cannot send one)', async () => {
      const response = await http()
        .post(`${API}/jobs/${job.id}/retry`)
        .set('Content-Type', 'application/x-www-form-urlencoded')
        .send('x=1')
        .expect(415);
      expect(response.body.detail).toMatch(/Content-Type: application\/json/);
    });
  });
});

describe.each(PLATFORMS_AND_STORES)('Dashboard safety (%s, %s store)', (platform, kind) => {
  const stores = new TestStores(kind);
  const apps: INestApplication[] = [];
  afterAll(async () => {
    for (const app of apps) await app.close();
    await stores.dispose();
  });
  const start = async (dashboard: object, configure: (app: INestApplication) => void = () => undefined) => {
    const app = await startTestApp(
      { store: await stores.options(), worker: { enabled: false }, dashboard: { enabled: true, ...dashboard } },
      { platform, configure, providers: [AdminHeaderGuard, { provide: ADMIN_HEADER, useValue: 'x-admin' }] as never },
    );
    apps.push(app);
    return app;
  };

  it('readOnly: reads answer, retry, cancel and purge get 403 problem+json and change nothing; the page says so', async () => {
    const app = await start({ readOnly: true, path: '/ops/dash/' });
    const store = app.get(JobStore);
    const failed = await seed(store, 'ReadOnly', 'Failed');
    const queued = await seed(store, 'ReadOnly', 'Queued');
    const server = app.getHttpServer();
    expect((await request(server).get('/ops/dash').expect(200)).text).toContain('data-read-only="true"');
    await request(server).get('/ops/dash/api/stats').expect(200);
    for (const [path, body] of [
      [`/ops/dash/api/jobs/${failed.id}/retry`, {}],
      [`/ops/dash/api/jobs/${queued.id}/cancel`, {}],
      ['/ops/dash/api/purge', { status: 'Failed', olderThanSeconds: 0 }],
    ] as const) {
      const refused = await request(server).post(path).set('Content-Type', 'application/json').send(body).expect(403);
      expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(refused.body.detail).toMatch(/read-only \(dashboard\.readOnly: true\)/);
    }
    expect((await store.getJob(failed.id))!.status).toBe(JobStatus.Failed);
    expect((await store.getJob(queued.id))!.status).toBe(JobStatus.Queued);
  });

  it('dashboard.guards: a guard class registered by the app refuses its page and API without its header (403 problem+json)', async () => {
    const app = await start({ guards: [AdminHeaderGuard] });
    const server = app.getHttpServer();
    for (const path of ['/admin/jobs', '/admin/jobs/api/stats', '/admin/jobs/api/jobs?status=Queued']) {
      const refused = await request(server).get(path).expect(403);
      expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(refused.body.detail).toBe('The dashboard guard AdminHeaderGuard refused this request.');
    }
    const failed = await seed(app.get(JobStore), 'Guarded', 'Failed');
    await request(server)
      .post(`/admin/jobs/api/jobs/${failed.id}/retry`)
      .set('Content-Type', 'application/json')
      .send({})
      .expect(403);
    expect((await app.get(JobStore).getJob(failed.id))!.status).toBe(JobStatus.Failed);
    await request(server).get('/admin/jobs/api/stats').set('X-Admin', 'yes').expect(200);
    // The jobs resource is not the dashboard's: its guards do not apply there.
    await request(server).get(`/jobs/${failed.id}`).expect(200);
  });

  it("the app's global guards apply to the dashboard", async () => {
    const denyAll: CanActivate = { canActivate: () => false };
    const app = await start({}, (nest) => nest.useGlobalGuards(denyAll));
    const refused = await request(app.getHttpServer()).get('/admin/jobs/api/stats').expect(403);
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it('hidePayloads: the job detail has no payload, result or captured request data', async () => {
    const app = await start({ hidePayloads: true });
    const completed = await seed(app.get(JobStore), 'Hidden', 'Completed');
    const detail = (await request(app.getHttpServer()).get(`/admin/jobs/api/jobs/${completed.id}`).expect(200)).body;
    expect(detail).toMatchObject({ id: completed.id, status: 'Completed' });
    for (const field of ['payload', 'result', 'headers', 'routeParams', 'queryParams'])
      expect(detail).not.toHaveProperty(field);
  });
});

describe.each(PLATFORMS)('Dashboard mounting (%s)', (platform: HttpPlatform) => {
  const apps: INestApplication[] = [];
  afterAll(async () => {
    for (const app of apps) await app.close();
  });

  it.each([
    ['enabled', true, 200],
    ['off', false, 404],
  ])('forRootAsync: the dashboard is mounted at its path when %s', async (_, enabled, status) => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        ScheduleModule.forRoot(),
        AsyncEndpointsModule.forRootAsync({
          useFactory: async () => ({ worker: { enabled: false }, dashboard: { enabled, path: 'ops/jobs' } }),
        }),
      ],
    }).compile();
    const app = moduleRef.createNestApplication(httpAdapter(platform), { logger: false });
    apps.push(app);
    await app.listen(0, '127.0.0.1');
    await request(app.getHttpServer()).get('/ops/jobs/api/stats').expect(status);
    await request(app.getHttpServer()).get('/ops/jobs').expect(status);
  });

  it('is off by default: no page, no API', async () => {
    const app = await startTestApp({ worker: { enabled: false } }, { platform });
    apps.push(app);
    await request(app.getHttpServer()).get('/admin/jobs').expect(404);
    await request(app.getHttpServer()).get('/admin/jobs/api/stats').expect(404);
  });

  it('stops the boot, naming the guard and the fix, when a dashboard guard class cannot be created', async () => {
    const MISSING = Symbol('MISSING');
    @Injectable()
    class UnresolvableGuard implements CanActivate {
      constructor(@Inject(MISSING) readonly missing: unknown) {}
      canActivate() {
        return true;
      }
    }
    await expect(
      startTestApp(
        { worker: { enabled: false }, dashboard: { enabled: true, guards: [UnresolvableGuard] } },
        { platform },
      ),
    ).rejects.toThrow(/dashboard\.guards: UnresolvableGuard could not be created .*Register it as a provider/);
  });
});
