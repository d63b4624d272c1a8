import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { JobStore, type AsyncEndpointsModuleOptions } from '../../lib/index.js';
import { startSampleApp } from '../support/sample-app.js';
import { STORE_KINDS, TestStores } from '../support/test-stores.js';

const CHOSEN_ID = '7c2e9a4b-1d3f-4e5a-8b6c-0d9e8f7a6b5c';

/** The owner is the `X-User-Id` header. */
const ownerFromHeader: AsyncEndpointsModuleOptions['jobOwner'] = (req) => {
  const user = req.headers['x-user-id'];
  return typeof user === 'string' ? user : undefined;
};

describe.each(STORE_KINDS)('X-Async-Request-Id scoped by owner (%s store)', (kind) => {
  const stores = new TestStores(kind);
  let app: INestApplication;

  afterEach(() => app?.close());
  afterAll(() => stores.dispose());

  async function start() {
    app = await startSampleApp({
      store: await stores.options(),
      worker: { enabled: false },
      jobOwner: ownerFromHeader,
    });
    const store = app.get(JobStore);
    const submit = (user: string, data: string) =>
      request(app.getHttpServer())
        .post('/api/process')
        .set('X-User-Id', user)
        .set('X-Async-Request-Id', CHOSEN_ID)
        .send({ data });
    const stored = async () => (await store.stats(Date.now())).counts.Queued;
    return { store, submit, stored, http: () => request(app.getHttpServer()) };
  }

  it("answers another owner's reuse of a chosen id with 202 and a job of its own, leaving the first owner's job intact", async () => {
    const { store, submit, stored, http } = await start();
    const alice = await submit('alice', 'alice data').expect(202);

    // Neither the same payload nor another one tells bob that alice's id exists: each makes bob's own job.
    const bob = await submit('bob', 'alice data').expect(202);
    expect(bob.body.id).not.toBe(alice.body.id);
    const carol = await submit('carol', 'carol data').expect(202);
    expect([alice.body.id, bob.body.id]).not.toContain(carol.body.id);
    expect((await submit('bob', 'alice data').expect(202)).body.id).toBe(bob.body.id);
    expect(await stored()).toBe(3);

    expect((await store.getJob(alice.body.id))!).toMatchObject({ owner: 'alice', payload: { data: 'alice data' } });
    expect((await store.getJob(bob.body.id))!).toMatchObject({ owner: 'bob', payload: { data: 'alice data' } });
    expect((await store.getJob(carol.body.id))!).toMatchObject({ owner: 'carol', payload: { data: 'carol data' } });
    await http().get(alice.headers.location!).set('X-User-Id', 'bob').expect(404);
    await http().get(bob.headers.location!).set('X-User-Id', 'bob').expect(200);
  });

  it('replays a chosen id for the same owner (202, same job) and answers 422 to the same owner with another payload', async () => {
    const { submit, stored } = await start();
    const first = await submit('alice', 'once').expect(202);
    expect((await submit('alice', 'once').expect(202)).body.id).toBe(first.body.id);
    await submit('alice', 'other').expect(422);
    expect(await stored()).toBe(1);
  });
});
