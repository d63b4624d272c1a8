import { type INestApplication, type Type, ValidationPipe } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import { AsyncEndpointsModule, type AsyncEndpointsModuleOptions } from '../../lib/index.js';

/** A real Nest app on a real port with the library and the given controllers and handlers. */
export async function startTestApp(
  options: AsyncEndpointsModuleOptions,
  { controllers = [], providers = [] }: { controllers?: Type[]; providers?: Type[] },
): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [ScheduleModule.forRoot(), AsyncEndpointsModule.forRoot(options)],
    controllers,
    providers,
  }).compile();
  const app = moduleRef.createNestApplication({ logger: ['error'] });
  app.useGlobalPipes(new ValidationPipe({ transform: true }));
  await app.listen(0, '127.0.0.1');
  return app;
}
