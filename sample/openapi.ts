import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';

/**
 * The document at `/docs-json`, and on Express the UI at `/docs` (on Fastify the UI's assets need
 * `@fastify/static`, which the sample does not install). The library documents its part by itself:
 * each `@AsyncEndpoint` route's 202 answer (job document, `Location`, `Retry-After`), its problem
 * answers, and `GET/DELETE /jobs/:id`.
 */
export function setUpOpenApi(app: INestApplication): void {
  const config = new DocumentBuilder()
    .setTitle('nestjs-async-endpoints sample')
    .setDescription('Submit a job (202 + Location), then poll the Location until the job is terminal.')
    .build();
  const ui = app.getHttpAdapter().getType() === 'express';
  SwaggerModule.setup('docs', app, () => SwaggerModule.createDocument(app, config), { ui });
}
