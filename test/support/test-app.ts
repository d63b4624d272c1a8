import { type INestApplication, type Type, ValidationPipe } from '@nestjs/common';
import type { AbstractHttpAdapter } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import { AsyncEndpointsModule, type AsyncEndpointsModuleOptions } from '../../lib/index.js';
import { httpAdapter, type HttpPlatform } from './test-platforms.js';

/** A real Nest app on a real port (Express, or Fastify) with the library and the given controllers and handlers. */
export async function startTestApp(
  options: AsyncEndpointsModuleOptions,
  {
    controllers = [],
    providers = [],
    platform = 'express',
    configure = () => undefined,
    adapter = httpAdapter(platform),
  }: {
    controllers?: Type[];
    providers?: Type[];
    platform?: HttpPlatform;
    configure?: (app: INestApplication) => void;
    /** An adapter of the platform with options of its own (router settings). */
    adapter?: AbstractHttpAdapter;
  },
): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [ScheduleModule.forRoot(), AsyncEndpointsModule.forRoot(options)],
    controllers,
    providers,
  }).compile();
  const app = moduleRef.createNestApplication(adapter, { logger: ['error'] });
  app.useGlobalPipes(new ValidationPipe({ transform: true }));
  configure(app);
  await app.listen(0, '127.0.0.1');
  return app;
}
