import { jest } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';

// @nestjs/swagger is an optional peer dependency: here it is "not installed".
jest.unstable_mockModule('@nestjs/swagger', () => {
  throw Object.assign(new Error("Cannot find package '@nestjs/swagger'"), { code: 'ERR_MODULE_NOT_FOUND' });
});

const { Body, Controller, Injectable, Post } = await import('@nestjs/common');
const { AsyncEndpoint, AsyncHandler } = await import('../../lib/index.js');
const { loadOpenApiModule } = await import('../../lib/http/openapi.js');
const { startTestApp } = await import('../support/test-app.js');

describe('Without @nestjs/swagger', () => {
  let app: INestApplication;
  afterAll(() => app?.close());

  it('loads no OpenAPI module', async () => {
    expect(await loadOpenApiModule()).toBeNull();
  });

  it('serves @AsyncEndpoint routes as usual, undocumented', async () => {
    @Controller('api')
    class ThingsController {
      @Post('things')
      @AsyncEndpoint('MakeThing')
      make(@Body() _body: object): void {}
    }
    @AsyncHandler('MakeThing')
    @Injectable()
    class MakeThingHandler {
      handle() {
        return 'made';
      }
    }
    app = await startTestApp({}, { controllers: [ThingsController], providers: [MakeThingHandler] });
    const submitted = await request(app.getHttpServer()).post('/api/things').send({ n: 1 }).expect(202);
    expect(submitted.headers.location).toBe(`/jobs/${submitted.body.id}`);
    expect(Reflect.getMetadata('swagger/apiResponse', ThingsController.prototype.make)).toBeUndefined();
  });
});
