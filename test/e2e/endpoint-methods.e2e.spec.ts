import { Body, Controller, Delete, Get, Injectable, type INestApplication, Patch, Post, Scope } from '@nestjs/common';
import request from 'supertest';
import { AsyncEndpoint, AsyncHandler, type AsyncContext, type AsyncEndpointHandler } from '../../lib/index.js';
import { waitFor } from '../support/sample-app.js';
import { startTestApp } from '../support/test-app.js';
import { PLATFORMS } from '../support/test-platforms.js';

/** What a handler saw of its request: the route's method only shows through its payload and params. */
@AsyncHandler('Echo')
@Injectable()
class EchoHandler implements AsyncEndpointHandler<object> {
  handle({ request, routeParams, queryParams }: AsyncContext<object>) {
    return { request, routeParams, queryParams };
  }
}

@Controller('items')
class ItemsController {
  @Get(':itemId')
  @AsyncEndpoint('Echo')
  lookup() {}

  @Patch(':itemId')
  @AsyncEndpoint('Echo')
  update(@Body() _body: object) {}

  @Delete(':itemId')
  @AsyncEndpoint('Echo')
  remove() {}
}

let instances = 0;

/** A transient handler: Nest builds one instance per job. */
@AsyncHandler('Count')
@Injectable({ scope: Scope.TRANSIENT })
class TransientHandler implements AsyncEndpointHandler {
  private readonly instance = ++instances;
  private jobs = 0;

  handle() {
    this.jobs++;
    return { instance: this.instance, jobsOnThisInstance: this.jobs };
  }
}

@Controller('count')
class CountController {
  @Post()
  @AsyncEndpoint('Count')
  submit() {}
}

describe.each(PLATFORMS)('@AsyncEndpoint beyond POST, and transient handlers (%s)', (platform) => {
  let app: INestApplication;
  const http = () => request(app.getHttpServer());

  beforeAll(async () => {
    app = await startTestApp(
      {},
      { controllers: [ItemsController, CountController], providers: [EchoHandler, TransientHandler], platform },
    );
  });
  afterAll(async () => {
    await app?.close();
  });

  const completed = (location: string) =>
    waitFor(async () => {
      const { body } = await http().get(location).expect(200);
      return body.status === 'Completed' ? body : undefined;
    });

  it.each([
    ['GET', () => http().get('/items/42?fields=name'), {}],
    ['PATCH', () => http().patch('/items/42?fields=name').send({ name: 'new' }), { name: 'new' }],
    ['DELETE', () => http().delete('/items/42?fields=name'), {}],
  ] as const)(
    'accepts %s with 202 and runs the job with its route params, query and body',
    async (_method, send, body) => {
      const submitted = await send();
      expect(submitted.status).toBe(202);
      expect(submitted.body).toMatchObject({ name: 'Echo', status: 'Queued' });
      const done = await completed(submitted.headers.location!);
      expect(done.result).toEqual({ request: body, routeParams: { itemId: '42' }, queryParams: { fields: 'name' } });
    },
  );

  it('runs each job of a transient handler on a fresh instance', async () => {
    const locations = await Promise.all(
      [1, 2, 3].map(async () => (await http().post('/count').expect(202)).headers.location!),
    );
    const results = await Promise.all(locations.map(async (location) => (await completed(location)).result));
    expect(results.map((result) => result.jobsOnThisInstance)).toEqual([1, 1, 1]);
    expect(new Set(results.map((result) => result.instance)).size).toBe(3);
  });
});
