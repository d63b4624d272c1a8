import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { deflateSync, gzipSync } from 'node:zlib';
import { Body, Controller, type INestApplication, Injectable, Param, Post, Put } from '@nestjs/common';
import type { AbstractHttpAdapter } from '@nestjs/core';
import { ExpressAdapter, type NestExpressApplication } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import request from 'supertest';
import {
  AsyncEndpoint,
  AsyncEndpointsService,
  AsyncHandler,
  InvalidPayloadError,
  JobStore,
  type AsyncEndpointHandler,
  type AsyncEndpointsModuleOptions,
  type JsonValue,
} from '../../lib/index.js';
import { startSampleApp } from '../support/sample-app.js';
import { startTestApp } from '../support/test-app.js';
import { PLATFORMS, type HttpPlatform } from '../support/test-platforms.js';

@Controller('v1/items')
class FreeFormController {
  @Put(':id')
  @AsyncEndpoint('Free')
  submit(@Param('id') _id: string, @Body() _body: Record<string, unknown>): void {}
}

/** A route of the app's own, its body read by the app's parser. */
@Controller('plain')
class PlainController {
  @Post()
  echo(@Body() body: unknown): unknown {
    return body;
  }
}

@AsyncHandler('Free')
@Injectable()
class FreeHandler implements AsyncEndpointHandler {
  handle() {}
}

/** JSON text nested `depth` levels deep (arrays inside an object), built as text: no recursion. */
const nested = (depth: number) => `{"a":${'['.repeat(depth - 1)}1${']'.repeat(depth - 1)}}`;

/** PUT /v1/items/1 with a JSON body in the given Content-Encoding (and type), bytes as given, on a connection of its own. */
function sendRaw(
  app: INestApplication,
  encoding: string,
  body: Buffer,
  contentType = 'application/json',
): Promise<{ status: number; type: string; body: Record<string, unknown> }> {
  const { port } = app.getHttpServer().address() as AddressInfo;
  return new Promise((resolve, reject) => {
    const headers = { 'Content-Type': contentType, 'Content-Encoding': encoding, 'Content-Length': body.length };
    const client = httpRequest(
      { host: '127.0.0.1', port, method: 'PUT', path: '/v1/items/1', headers, agent: false },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({
            status: response.statusCode!,
            type: response.headers['content-type'] ?? '',
            body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>,
          }),
        );
      },
    );
    client.on('error', reject);
    client.end(body);
  });
}

const storedJobs = async (app: INestApplication) =>
  Object.values((await app.get(JobStore).stats(Date.now())).counts).reduce((sum, count) => sum + count, 0);

describe.each(PLATFORMS)('Input limits of async endpoints (%s)', (platform) => {
  const apps: INestApplication[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  async function start(options: AsyncEndpointsModuleOptions = {}, adapter?: AbstractHttpAdapter) {
    const app = await startTestApp(
      { worker: { enabled: false }, ...options },
      { controllers: [FreeFormController], providers: [FreeHandler], platform, adapter },
    );
    apps.push(app);
    return { app, http: () => request(app.getHttpServer()) };
  }

  const put = (http: () => ReturnType<typeof request>, text: string, path = '/v1/items/1') =>
    http().put(path).set('Content-Type', 'application/json').send(text);

  it('accepts a body nested 64 levels deep and answers 65 with 400 problem+json naming http.maxJsonDepth', async () => {
    const { app, http } = await start();
    await put(http, nested(64)).expect(202);
    const answer = await put(http, nested(65)).expect(400);
    expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(answer.body).toMatchObject({
      status: 400,
      detail: expect.stringMatching(/deeper than 64 levels, the limit set by http\.maxJsonDepth/),
      instance: '/v1/items/1',
    });
    expect(await storedJobs(app)).toBe(1);
  });

  it('follows http.maxJsonDepth: 3 accepts depth 3 and refuses depth 4', async () => {
    const { http } = await start({ http: { maxJsonDepth: 3 } });
    await put(http, nested(3)).expect(202);
    const answer = await put(http, nested(4)).expect(400);
    expect(answer.body.detail).toContain('deeper than 3 levels');
  });

  it('answers 400 problem+json, never a 500, to a body nested 10,000 levels deep, and on a DTO route also to 1,000 levels under the highest limit', async () => {
    const { app, http } = await start({ http: { maxJsonDepth: 1000 } });
    const answer = await put(http, nested(10_000)).expect(400);
    expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(answer.body.detail).toContain('deeper than 1000 levels');
    expect(await storedJobs(app)).toBe(0);

    // The sample's ValidationPipe (class-transformer recurses) at the highest limit: 400s, no 500.
    const sample = await startSampleApp(
      { store: { type: 'memory' }, worker: { enabled: false }, http: { maxJsonDepth: 1000 } },
      undefined,
      platform,
    );
    apps.push(sample);
    for (const depth of [10_000, 999]) {
      const deep = `{"data":"x","extra":${nested(depth)}}`;
      const dto = await request(sample.getHttpServer())
        .post('/api/process')
        .set('Content-Type', 'application/json')
        .send(deep);
      expect({ depth, status: dto.status, type: dto.headers['content-type'] }).toEqual({
        depth,
        status: 400,
        type: expect.stringMatching(/^application\/problem\+json/),
      });
    }
  });

  it.each([
    ['at the top', '{"__proto__":{"admin":true}}'],
    ['nested', '{"a":[{"b":{"__proto__":{"admin":true}}}]}'],
    ['escaped', '{"\\u005f_proto__":{"admin":true}}'],
  ])('answers a __proto__ key %s with 400 problem+json and stores nothing', async (_where, text) => {
    const { app, http } = await start();
    const answer = await put(http, text).expect(400);
    expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(answer.body.status).toBe(400);
    expect(await storedJobs(app)).toBe(0);
  });

  it('stores constructor and prototype keys as plain data', async () => {
    const { app, http } = await start();
    const payload = { constructor: 'c', prototype: { x: 1 }, toString: 'not a function' };
    const answer = await put(http, JSON.stringify(payload)).expect(202);
    const job = (await app.get(JobStore).getJob(answer.body.id as string))!;
    expect(job.payload).toEqual(payload);
    expect(Object.getPrototypeOf(job.payload)).toBe(Object.prototype);
  });

  it('makes AsyncEndpointsService.submit throw InvalidPayloadError for a payload too deep or with __proto__', async () => {
    const { app } = await start();
    const service = app.get(AsyncEndpointsService);
    const deep = JSON.parse(nested(10_000)) as JsonValue;
    await expect(service.submit('Free', deep)).rejects.toThrow(InvalidPayloadError);
    await expect(service.submit('Free', deep)).rejects.toThrow(/http\.maxJsonDepth/);
    await expect(service.submit('Free', JSON.parse('{"__proto__":{"admin":true}}') as JsonValue)).rejects.toThrow(
      /"__proto__" key/,
    );
    expect(await storedJobs(app)).toBe(0);
  });

  it('decodes gzip and deflate bodies, answers a gzip bomb 413 and a broken gzip body 400, as problem+json', async () => {
    const { app } = await start({ http: { bodyLimitBytes: 100_000 } });
    const payload = { data: 'compressed' };
    for (const [encoding, encode] of [
      ['gzip', gzipSync],
      ['deflate', deflateSync],
    ] as const) {
      const answer = await sendRaw(app, encoding, encode(JSON.stringify(payload)));
      expect({ encoding, status: answer.status }).toEqual({ encoding, status: 202 });
      expect((await app.get(JobStore).getJob(answer.body.id as string))!.payload).toEqual(payload);
    }
    const bomb = gzipSync(`{"data":"${'0'.repeat(10_000_000)}"}`);
    expect(bomb.length).toBeLessThan(100_000);
    const tooLarge = await sendRaw(app, 'gzip', bomb);
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.type).toMatch(/^application\/problem\+json/);
    expect(tooLarge.body.detail).toContain('http.bodyLimitBytes');
    const broken = await sendRaw(app, 'gzip', Buffer.from('{"a":1}'));
    expect(broken.status).toBe(400);
    expect(broken.type).toMatch(/^application\/problem\+json/);
    const unknown = await sendRaw(app, 'zstd', Buffer.from('{"a":1}'));
    expect(unknown.status).toBe(415);
    expect(unknown.type).toMatch(/^application\/problem\+json/);
    expect(await storedJobs(app)).toBe(2);
  });

  it('answers a request without a body as usual whatever its Content-Encoding header says (GET /jobs/:id with zstd)', async () => {
    const { http } = await start();
    const id = (await put(http, '{"a":1}').expect(202)).body.id as string;
    const answer = await http().get(`/jobs/${id}`).set('Content-Encoding', 'zstd');
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ id, status: 'Queued' });
  });

  it('answers a body declared larger than http.bodyLimitBytes 413 problem+json at once, without reading it, and closes the connection', async () => {
    const { app } = await start({ http: { bodyLimitBytes: 1_000 } });
    const { port } = app.getHttpServer().address() as AddressInfo;
    const answer = await new Promise<{ status: number; connection: string | undefined; type: string }>(
      (resolve, reject) => {
        const headers = { 'Content-Type': 'application/json', 'Content-Length': 100_000_000 };
        const client = httpRequest(
          { host: '127.0.0.1', port, method: 'PUT', path: '/v1/items/1', headers, agent: false },
          (response) => {
            response.resume();
            resolve({
              status: response.statusCode!,
              connection: response.headers.connection,
              type: response.headers['content-type'] ?? '',
            });
          },
        );
        client.on('error', reject);
        // Only the first bytes of the 100 MB it declares: the answer must not wait for the rest.
        client.write('{"data":"');
      },
    );
    expect(answer).toEqual({
      status: 413,
      connection: 'close',
      type: expect.stringMatching(/^application\/problem\+json/),
    });
  });

  it('answers Content-Encoding names of Object.prototype (constructor, __proto__, toString) 415 problem+json and keeps serving', async () => {
    const { app, http } = await start();
    for (const encoding of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const answer = await sendRaw(app, encoding, Buffer.from('{"a":1}'));
      expect({ encoding, status: answer.status, type: answer.type }).toEqual({
        encoding,
        status: 415,
        type: expect.stringMatching(/^application\/problem\+json/),
      });
    }
    await put(http, '{"a":1}').expect(202);
    expect(await storedJobs(app)).toBe(1);
  });

  it('answers DELETE /jobs/:id with a malformed JSON body as without one, and a broken %-encoded or overlong id 400 problem+json', async () => {
    const { app, http } = await start();
    const submitted = await put(http, '{"a":1}').expect(202);
    const id = submitted.body.id as string;
    const deleted = await http().delete(`/jobs/${id}`).set('Content-Type', 'application/json').send('{"a":');
    expect(deleted.status).toBe(200);
    expect(deleted.body).toMatchObject({ id, status: 'Canceled' });
    const unknown = await http()
      .delete('/jobs/3f0c2a8e-5b7d-4c1e-9a2b-1d2e3f4a5b6c')
      .set('Content-Type', 'application/json')
      .send('{"a":');
    expect(unknown.status).toBe(404);
    expect(unknown.headers['content-type']).toMatch(/^application\/problem\+json/);
    for (const [method, path] of [
      ['get', '/jobs/%E0%A4%A'],
      ['delete', '/jobs/%E0%A4%A'],
      ['get', `/jobs/${'1'.repeat(300)}`],
    ] as const) {
      const answer = await http()[method](path);
      expect({ path, method, status: answer.status, type: answer.headers['content-type'] }).toEqual({
        path,
        method,
        status: 400,
        type: expect.stringMatching(/^application\/problem\+json/),
      });
    }
    expect(await storedJobs(app)).toBe(1);
  });
});

describe('Routing settings and the body limits of async endpoints', () => {
  const apps: INestApplication[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  async function start(platform: HttpPlatform, adapter?: AbstractHttpAdapter) {
    const app = await startTestApp(
      { worker: { enabled: false }, http: { bodyLimitBytes: 1_000 } },
      { controllers: [FreeFormController], providers: [FreeHandler], platform, adapter },
    );
    apps.push(app);
    return () => request(app.getHttpServer());
  }

  const oversized = JSON.stringify({ data: 'x'.repeat(1_100) });

  /** Both answers of the body reader on a path: an oversized body and a malformed one. */
  async function bodyAnswers(http: () => ReturnType<typeof request>, path: string) {
    const tooLarge = await http().put(path).set('Content-Type', 'application/json').send(oversized);
    const malformed = await http().put(path).set('Content-Type', 'application/json').send('{"a":');
    return [tooLarge, malformed].map((answer) => `${answer.status} ${answer.headers['content-type']?.split(';')[0]}`);
  }

  it.each(['/V1/ITEMS/1', '/v1/Items/1/'])(
    'Express by default: %s, a route in another case or with a trailing slash, gets the limit and problem+json',
    async (path) => {
      const http = await start('express');
      expect(await bodyAnswers(http, path)).toEqual(['413 application/problem+json', '400 application/problem+json']);
    },
  );

  it("Express with 'case sensitive routing' and 'strict routing': an oversized body to /V1/ITEMS/1 or /v1/items/1/ gets 404", async () => {
    const express = (await import('express')).default();
    express.set('case sensitive routing', true);
    express.set('strict routing', true);
    const http = await start('express', new ExpressAdapter(express));
    await http().put('/v1/items/1').set('Content-Type', 'application/json').send('{}').expect(202);
    for (const path of ['/V1/ITEMS/1', '/v1/items/1/']) {
      // Not the async endpoint: its body limit does not apply, the app's (100 kB) does.
      const answer = await http().put(path).set('Content-Type', 'application/json').send(oversized);
      expect({ path, status: answer.status }).toEqual({ path, status: 404 });
    }
  });

  it('Express whose own server parsed the JSON body first (express.json() before Nest): 202, and a body too deep still 400', async () => {
    const express = (await import('express')).default;
    const server = express();
    server.use(express.json());
    const http = await start('express', new ExpressAdapter(server));
    const accepted = await http()
      .put('/v1/items/1')
      .set('Content-Type', 'application/json')
      .send('{"a":1}')
      .timeout(5_000);
    expect(accepted.status).toBe(202);
    const deep = await http()
      .put('/v1/items/1')
      .set('Content-Type', 'application/json')
      .send(nested(65))
      .timeout(5_000);
    expect(deep.status).toBe(400);
    expect(deep.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it('Fastify by default: an oversized body to /V1/ITEMS/1 or /v1/items/1/ gets 404', async () => {
    const http = await start('fastify');
    for (const path of ['/V1/ITEMS/1', '/v1/items/1/']) {
      // Not the async endpoint: its body limit does not apply, the app's (100 kB) does.
      const answer = await http().put(path).set('Content-Type', 'application/json').send(oversized);
      expect({ path, status: answer.status }).toEqual({ path, status: 404 });
    }
  });

  it('Fastify with caseSensitive false and ignoreTrailingSlash: /V1/ITEMS/1/ gets the limit and problem+json', async () => {
    const http = await start(
      'fastify',
      new FastifyAdapter({ routerOptions: { caseSensitive: false, ignoreTrailingSlash: true } }),
    );
    expect(await bodyAnswers(http, '/V1/ITEMS/1/')).toEqual([
      '413 application/problem+json',
      '400 application/problem+json',
    ]);
  });
});

describe("Async endpoint bodies and the app's own body parser", () => {
  const apps: INestApplication[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  it.each(PLATFORMS)(
    "%s: http.bodyLimitBytes (2,000), not the app's body limit (500), applies to async endpoints; the app's limit to its other routes",
    async (platform) => {
      const app = await startTestApp(
        { worker: { enabled: false }, http: { bodyLimitBytes: 2_000 } },
        {
          controllers: [FreeFormController, PlainController],
          providers: [FreeHandler],
          platform,
          adapter: platform === 'fastify' ? new FastifyAdapter({ bodyLimit: 500 }) : new ExpressAdapter(),
          configure: (nest) => {
            if (platform === 'express') (nest as NestExpressApplication).useBodyParser('json', { limit: 500 });
          },
        },
      );
      apps.push(app);
      const http = () => request(app.getHttpServer());
      const body = (bytes: number) => JSON.stringify({ data: 'x'.repeat(bytes) });
      await http().put('/v1/items/1').set('Content-Type', 'application/json').send(body(1_000)).expect(202);
      const tooLarge = await http()
        .put('/v1/items/1')
        .set('Content-Type', 'application/json')
        .send(body(2_100))
        .expect(413);
      expect(tooLarge.body.detail).toBe(
        'The request body is larger than 2000 bytes, the limit set by http.bodyLimitBytes.',
      );
      await http().post('/plain').set('Content-Type', 'application/json').send(body(1_000)).expect(413);
      await http().post('/plain').set('Content-Type', 'application/json').send(body(100)).expect(201);
    },
  );

  it('Express: reads a JSON body in its charset (UTF-16 too) and x-gzip coded, and answers a charset that is not UTF 415 problem+json', async () => {
    const app = await startTestApp(
      { worker: { enabled: false } },
      { controllers: [FreeFormController], providers: [FreeHandler] },
    );
    apps.push(app);
    const payload = { data: 'é ü €' };
    const utf16 = await sendRaw(
      app,
      'identity',
      Buffer.from(JSON.stringify(payload), 'utf16le'),
      'application/json; charset=utf-16le',
    );
    expect(utf16.status).toBe(202);
    expect((await app.get(JobStore).getJob(utf16.body.id as string))!.payload).toEqual(payload);
    const gzipped = await sendRaw(app, 'x-gzip', gzipSync(JSON.stringify(payload)));
    expect(gzipped.status).toBe(202);
    expect((await app.get(JobStore).getJob(gzipped.body.id as string))!.payload).toEqual(payload);
    const latin1 = await sendRaw(
      app,
      'identity',
      Buffer.from(JSON.stringify(payload), 'latin1'),
      'application/json; charset=iso-8859-1',
    );
    expect(latin1.status).toBe(415);
    expect(latin1.type).toMatch(/^application\/problem\+json/);
    expect(latin1.body.detail).toBe("The charset 'iso-8859-1' is not supported; send JSON in UTF-8.");
    expect(await storedJobs(app)).toBe(2);
  });
});
