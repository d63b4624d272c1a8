import { Body, Controller, Injectable, Post, type INestApplication } from '@nestjs/common';
import request from 'supertest';
import {
  AsyncEndpoint,
  AsyncHandler,
  RedisJobStore,
  type AsyncContext,
  type AsyncEndpointHandler,
} from '../../lib/index.js';
import { StoreKeys } from '../../lib/store/redis/redis-keys.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/sample-app.js';
import { startTestApp } from '../support/test-app.js';
import { PLATFORMS } from '../support/test-platforms.js';

@AsyncHandler('Partitioned')
@Injectable()
class PartitionedHandler implements AsyncEndpointHandler<{ n: number }> {
  handle({ request }: AsyncContext<{ n: number }>) {
    return { doubled: request.n * 2 };
  }
}

@Controller()
class PartitionedController {
  @Post('partitioned')
  @AsyncEndpoint('Partitioned')
  submit(@Body() _body: unknown) {}
}

const PARTITIONS = 4;
let server: RedisServer;
let prefixes = 0;

beforeAll(async () => {
  server = await RedisServer.start();
});

afterAll(async () => {
  await server?.dispose();
});

describe.each(PLATFORMS)('A Redis store of 4 partitions behind the HTTP API (%s)', (platform) => {
  const keyPrefix = `{ae-partitions-${platform}-${++prefixes}}`;
  let app: INestApplication;

  beforeAll(async () => {
    app = await startTestApp(
      {
        store: new RedisJobStore({ url: server.url, keyPrefix, partitions: PARTITIONS, logger: new RecordingLogger() }),
      },
      { controllers: [PartitionedController], providers: [PartitionedHandler], platform },
    );
  });

  afterAll(async () => {
    await app?.close();
  });

  it('replays an Idempotency-Key with the same job, runs every job once, and spreads the jobs over the partitions', async () => {
    const http = request(app.getHttpServer());
    const keys = new StoreKeys(keyPrefix, PARTITIONS);
    const ids: string[] = [];
    for (let n = 0; n < 24; n++) {
      const first = await http.post('/partitioned').set('Idempotency-Key', `key-${n}`).send({ n }).expect(202);
      const again = await http.post('/partitioned').set('Idempotency-Key', `key-${n}`).send({ n }).expect(202);
      expect(again.body.id).toBe(first.body.id);
      ids.push(first.body.id as string);
    }
    const chosen = await http
      .post('/partitioned')
      .set('X-Async-Request-Id', 'a5f7c1de-1111-4222-8333-944455556666')
      .send({ n: 100 })
      .expect(202);
    expect(chosen.body.id).toBe('a5f7c1de-1111-4222-8333-944455556666');
    ids.push(chosen.body.id as string);

    for (const [n, id] of ids.entries()) {
      const done = await waitFor(async () => {
        const { body } = await http.get(`/jobs/${id}`).expect(200);
        return body.status === 'Completed' ? body : undefined;
      });
      expect(done.result).toEqual({ doubled: (n < 24 ? n : 100) * 2 });
      expect(done.retryCount).toBe(0);
    }
    const used = new Set(ids.map((id) => keys.partitionIndexOf(id)));
    expect(used.size).toBeGreaterThan(1);
  });
});
