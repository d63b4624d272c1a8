import 'reflect-metadata';
import { type INestApplication, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { SampleModule } from './app.module.js';
import { setUpOpenApi } from './openapi.js';

/** Express by default; `HTTP_ADAPTER=fastify` runs the same app on Fastify. */
async function createApp(): Promise<INestApplication> {
  if (process.env.HTTP_ADAPTER !== 'fastify') return NestFactory.create(SampleModule.forRoot());
  const { FastifyAdapter } = await import('@nestjs/platform-fastify');
  return NestFactory.create(SampleModule.forRoot(), new FastifyAdapter());
}

async function bootstrap(): Promise<void> {
  const app = await createApp();
  app.enableShutdownHooks();
  const express = app.getHttpAdapter().getType() === 'express';
  setUpOpenApi(app);
  const port = Number(process.env.PORT ?? 3000);
  await app.listen(port);
  Logger.log(
    `Sample listening on http://localhost:${port} (POST /api/process, GET /jobs/:id, GET /health, GET /admin/jobs, GET /docs-json${express ? ', GET /docs' : ''})`,
    'Sample',
  );
}

void bootstrap();
