import { Body, Controller, type INestApplication, Injectable, Post } from '@nestjs/common';
import { ApiAcceptedResponse, DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import request from 'supertest';
import { AsyncEndpoint, AsyncHandler, type AsyncEndpointHandler } from '../../lib/index.js';
import { setUpOpenApi } from '../../sample/openapi.js';
import { startSampleApp } from '../support/sample-app.js';
import { startTestApp } from '../support/test-app.js';

type Operation = {
  parameters?: { name: string; in: string; required?: boolean; schema?: Record<string, unknown> }[];
  responses: Record<
    string,
    { description: string; headers?: Record<string, unknown>; content?: Record<string, { schema: unknown }> }
  >;
  tags?: string[];
};

const jobDocument = { $ref: '#/components/schemas/AsyncJobDocument' };
const problemDetails = { $ref: '#/components/schemas/ProblemDetails' };

describe('OpenAPI with @nestjs/swagger installed', () => {
  let app: INestApplication;
  let document: OpenAPIObject;
  const operation = (path: string, method: 'get' | 'post' | 'delete') =>
    (document.paths[path] as Record<string, Operation>)[method]!;

  beforeAll(async () => {
    app = await startSampleApp({ worker: { enabled: false }, dashboard: { enabled: true } });
    document = SwaggerModule.createDocument(app, new DocumentBuilder().build());
  });
  afterAll(() => app?.close());

  it('documents the 202 answer of every @AsyncEndpoint route: job document, Location, Retry-After', () => {
    for (const path of ['/api/process', '/api/generate-report', '/api/flaky']) {
      const accepted = operation(path, 'post').responses['202']!;
      expect(accepted.content).toEqual({ 'application/json': { schema: jobDocument } });
      expect(Object.keys(accepted.headers ?? {})).toEqual(
        expect.arrayContaining(['Location', 'Retry-After', 'Cache-Control']),
      );
      expect(accepted.headers!['Retry-After']).toMatchObject({ schema: { type: 'integer' } });
      // No 201 guessed from the POST.
      expect(operation(path, 'post').responses).not.toHaveProperty('201');
    }
  });

  it('documents the problem answers and the idempotency headers of a submit', () => {
    const submit = operation('/api/process', 'post');
    for (const status of ['400', '413', '415', '422', '429', '503']) {
      expect(submit.responses[status]!.content).toEqual({ 'application/problem+json': { schema: problemDetails } });
    }
    expect(submit.responses['429']!.headers).toHaveProperty('Retry-After');
    expect(submit.parameters).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'Idempotency-Key', in: 'header', required: false }),
        expect.objectContaining({
          name: 'X-Async-Request-Id',
          in: 'header',
          schema: expect.objectContaining({ format: 'uuid' }),
        }),
      ]),
    );
  });

  it('describes the job document and problem details schemas', () => {
    const schemas = document.components!.schemas as Record<
      string,
      { properties: Record<string, unknown>; required?: string[] }
    >;
    expect(Object.keys(schemas.AsyncJobDocument!.properties)).toEqual([
      'id',
      'name',
      'status',
      'retryCount',
      'maxRetries',
      'progress',
      'createdAt',
      'startedAt',
      'completedAt',
      'lastUpdatedAt',
      'retryDelayUntil',
      'result',
      'error',
      'links',
    ]);
    expect(schemas.AsyncJobDocument!.required).not.toContain('links');
    expect(schemas.AsyncJobStatus).toMatchObject({
      enum: ['Queued', 'Scheduled', 'InProgress', 'Completed', 'Failed', 'Canceled'],
    });
    expect(schemas.AsyncJobError!.properties).toHaveProperty('code');
    expect(schemas.ProblemDetails!.required).toEqual(['type', 'title', 'status', 'detail']);
  });

  it('documents the jobs controller: GET with waitSeconds, DELETE, their answers', () => {
    const read = operation('/jobs/{id}', 'get');
    const cancel = operation('/jobs/{id}', 'delete');
    expect(read.tags).toEqual(['jobs']);
    expect(read.parameters).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'id', in: 'path', schema: { type: 'string', format: 'uuid' } }),
        expect.objectContaining({
          name: 'waitSeconds',
          in: 'query',
          required: false,
          schema: expect.objectContaining({ type: 'integer', maximum: 30 }),
        }),
      ]),
    );
    expect(read.responses['200']!.content).toEqual({ 'application/json': { schema: jobDocument } });
    expect(read.responses['202']!.headers).toHaveProperty('Location');
    expect(read.responses['404']!.content).toEqual({ 'application/problem+json': { schema: problemDetails } });
    expect(Object.keys(cancel.responses)).toEqual(expect.arrayContaining(['200', '202', '404', '409']));
    expect(cancel.responses['409']!.content).toEqual({ 'application/problem+json': { schema: problemDetails } });
  });

  it("leaves the dashboard's routes out of the app's document (an operator's page, not the app's API)", () => {
    expect(Object.keys(document.paths).filter((path) => path.startsWith('/admin'))).toEqual([]);
    expect(Object.keys(document.paths)).toContain('/api/process');
  });

  it('keeps a response a route declares itself', async () => {
    class Order {
      sku!: string;
    }
    @Controller('orders')
    class OrdersController {
      @Post()
      @ApiAcceptedResponse({ description: 'Order accepted; see Location.' })
      @AsyncEndpoint('PlaceOrder')
      place(@Body() _order: Order): void {}
    }
    @AsyncHandler('PlaceOrder')
    @Injectable()
    class PlaceOrderHandler implements AsyncEndpointHandler {
      handle() {}
    }
    const own = await startTestApp(
      { worker: { enabled: false } },
      { controllers: [OrdersController], providers: [PlaceOrderHandler] },
    );
    try {
      const ordersDocument = SwaggerModule.createDocument(own, new DocumentBuilder().build());
      const responses = (ordersDocument.paths['/orders'] as Record<string, Operation>).post!.responses;
      expect(responses['202']!.description).toBe('Order accepted; see Location.');
      expect(responses['422']!.content).toEqual({ 'application/problem+json': { schema: problemDetails } });
    } finally {
      await own.close();
    }
  });

  it('the sample on Fastify serves the document at /docs-json, and no UI at /docs', async () => {
    const sample = await startSampleApp({ worker: { enabled: false } }, (created) => setUpOpenApi(created), 'fastify');
    try {
      const json = await request(sample.getHttpServer()).get('/docs-json').expect(200);
      expect(Object.keys(json.body.paths)).toEqual(expect.arrayContaining(['/api/process', '/jobs/{id}']));
      expect(json.body.paths['/api/process'].post.responses['202'].content['application/json'].schema).toEqual(
        jobDocument,
      );
      await request(sample.getHttpServer()).get('/docs').expect(404);
    } finally {
      await sample.close();
    }
  });

  it('the sample serves the UI at /docs and the document at /docs-json', async () => {
    const sample = await startSampleApp({ worker: { enabled: false } }, (created) => setUpOpenApi(created));
    try {
      const ui = await request(sample.getHttpServer()).get('/docs').expect(200);
      expect(ui.headers['content-type']).toMatch(/^text\/html/);
      expect(ui.text).toContain('swagger-ui');
      const json = await request(sample.getHttpServer()).get('/docs-json').expect(200);
      expect(Object.keys(json.body.paths)).toEqual(expect.arrayContaining(['/api/process', '/jobs/{id}']));
      expect(json.body.paths['/api/process'].post.responses['202'].content['application/json'].schema).toEqual(
        jobDocument,
      );
    } finally {
      await sample.close();
    }
  });
});
