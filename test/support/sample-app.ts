import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { SampleModule } from '../../sample/app.module.js';
import type { AsyncEndpointsModuleOptions } from '../../lib/index.js';
import { httpAdapter, type HttpPlatform } from './test-platforms.js';

/** The sample app on a real HTTP server (port 0), with the given library options, on Express or Fastify. */
export async function startSampleApp(
  options: AsyncEndpointsModuleOptions = {},
  configure: (app: INestApplication) => void = () => undefined,
  platform: HttpPlatform = 'express',
): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({ imports: [SampleModule.forRoot(options)] }).compile();
  const app = moduleRef.createNestApplication(httpAdapter(platform), { logger: ['error'] });
  configure(app);
  await app.listen(0, '127.0.0.1');
  return app;
}

/** Polls until `check` returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(check: () => Promise<T | undefined>, timeoutMs = 10_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
