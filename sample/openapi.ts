import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';

/**
 * The OpenAPI UI at `/docs`, the document at `/docs-json`. The library documents its part by
 * itself: each `@AsyncEndpoint` route's 202 answer (job document, `Location`, `Retry-After`), its
 * problem answers, and `GET/DELETE /jobs/:id`.
 */
export function setUpOpenApi(app: INestApplication): void {
  const config = new DocumentBuilder()
    .setTitle('nestjs-async-endpoints sample')
    .setDescription('Submit a job (202 + Location), then poll the Location until the job is terminal.')
    .build();
  SwaggerModule.setup('docs', app, () => SwaggerModule.createDocument(app, config));
}
