import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { SampleModule } from './app.module.js';

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create(SampleModule.forRoot());
  app.enableShutdownHooks();
  const port = Number(process.env.PORT ?? 3000);
  await app.listen(port);
  Logger.log(`Sample listening on http://localhost:${port} (POST /api/process, GET /jobs/:id, GET /health)`, 'Sample');
}

void bootstrap();
