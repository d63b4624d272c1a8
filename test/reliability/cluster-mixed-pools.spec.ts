import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { CompiledProcesses, NodeProcess } from '../support/node-processes.js';
import { RedisCluster } from '../support/redis-cluster.js';
import { waitFor } from '../support/sample-app.js';

interface Ready {
  port: number | null;
}

/**
 * Mixed worker pools on a Redis Cluster, as separate processes: an API process, and workers that
 * register different handlers. Jobs go only to a worker with their handler; a job whose handler no
 * running worker has waits Queued (never Failed) until one comes.
 */
describe('Mixed worker pools on a Redis Cluster (real processes)', () => {
  const keyPrefix = `{ae-pools-${randomUUID()}}`;
  let compiled: CompiledProcesses | undefined;
  let cluster: RedisCluster | undefined;
  const running = new Map<string, NodeProcess>();
  let apiUrl = '';

  async function startWorker(id: string, handlers: string): Promise<void> {
    const { process } = await NodeProcess.start<Ready>(id, compiled!.entry('pool-app'), {
      ROLE: 'worker',
      INSTANCE_ID: id,
      HANDLERS: handlers,
      REDIS_CLUSTER_NODES: cluster!.nodes.join(','),
      KEY_PREFIX: keyPrefix,
    });
    running.set(id, process);
  }

  async function stopWorker(id: string): Promise<void> {
    await running.get(id)?.stop(10_000);
    running.delete(id);
  }

  async function submit(name: 'x' | 'y', count: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++)
      ids.push((await request(apiUrl).post(`/api/${name}`).send({ i }).expect(202)).body.id);
    return ids;
  }

  const documents = (ids: string[]) =>
    Promise.all(ids.map(async (id) => (await request(apiUrl).get(`/jobs/${id}`).expect(200)).body));
  const completed = (ids: string[]) =>
    waitFor(async () => {
      const docs = await documents(ids);
      return docs.every((doc) => doc.status === 'Completed') ? docs : undefined;
    }, 20_000);

  beforeAll(async () => {
    compiled = await CompiledProcesses.compile();
    cluster = await RedisCluster.start();
    const api = await NodeProcess.start<Ready>('api', compiled.entry('pool-app'), {
      ROLE: 'api',
      INSTANCE_ID: 'api',
      REDIS_CLUSTER_NODES: cluster.nodes.join(','),
      KEY_PREFIX: keyPrefix,
    });
    running.set('api', api.process);
    apiUrl = `http://127.0.0.1:${api.ready.port}`;
    await Promise.all([startWorker('worker-a', 'X'), startWorker('worker-b', 'X,Y')]);
  }, 90_000);

  afterAll(async () => {
    await Promise.all([...running.values()].map((child) => child.stop(5000)));
    await cluster?.stop();
  }, 60_000);

  it('runs Y jobs only on worker B ({X, Y}), X jobs on either', async () => {
    const [xIds, yIds] = [await submit('x', 20), await submit('y', 20)];
    const [xDocs, yDocs] = [await completed(xIds), await completed(yIds)];
    expect(new Set(yDocs.map((doc) => doc.result.ranOn))).toEqual(new Set(['worker-b']));
    for (const doc of xDocs) expect(['worker-a', 'worker-b']).toContain(doc.result.ranOn);
  }, 60_000);

  it('keeps Y jobs Queued (not Failed) while B is stopped, X jobs running on A, and runs the Y jobs when B returns', async () => {
    await stopWorker('worker-b');
    const yIds = await submit('y', 10);
    const xDocs = await completed(await submit('x', 10));
    expect(new Set(xDocs.map((doc) => doc.result.ranOn))).toEqual(new Set(['worker-a']));
    // A has claimed its X jobs since the Y jobs were submitted: they were there to take, and were left.
    expect(new Set((await documents(yIds)).map((doc) => doc.status))).toEqual(new Set(['Queued']));

    await startWorker('worker-b', 'X,Y');
    const yDocs = await completed(yIds);
    expect(new Set(yDocs.map((doc) => doc.result.ranOn))).toEqual(new Set(['worker-b']));
  }, 60_000);

  it('rolling deploy: with only an old worker (without Y) running, Y jobs wait; the new worker (with Y) runs them, then the old one stops', async () => {
    await Promise.all([stopWorker('worker-a'), stopWorker('worker-b')]);
    await startWorker('old', 'X');
    const yIds = await submit('y', 10);
    const xDocs = await completed(await submit('x', 10));
    expect(new Set(xDocs.map((doc) => doc.result.ranOn))).toEqual(new Set(['old']));
    expect(new Set((await documents(yIds)).map((doc) => doc.status))).toEqual(new Set(['Queued']));

    await startWorker('new', 'X,Y');
    const yDocs = await completed(yIds);
    expect(new Set(yDocs.map((doc) => doc.result.ranOn))).toEqual(new Set(['new']));
    await stopWorker('old');
    const after = await completed([...(await submit('x', 5)), ...(await submit('y', 5))]);
    expect(new Set(after.map((doc) => doc.result.ranOn))).toEqual(new Set(['new']));
  }, 60_000);
});
