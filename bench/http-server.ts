// The sample app plus one plain route, for the HTTP scenario: `node http-server.js [redisUrl]`.
// It listens on a free port of 127.0.0.1 and sends { port } to the parent process.
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { Body, Controller, HttpCode, Module, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { SampleModule, sampleOptions } from '../sample/app.module.js';
import { ProcessRequest } from '../sample/process.js';

/** Same body, same validation, same status code as POST /api/process; stores nothing. */
@Controller('bench')
class PlainController {
  @Post('plain')
  @HttpCode(202)
  accept(@Body() body: ProcessRequest): { id: string; status: string; length: number } {
    return { id: randomUUID(), status: 'Received', length: body.data.length };
  }
}

const redisUrl = process.argv[2];
const options = sampleOptions(redisUrl ? { REDIS_URL: redisUrl } : {});
// The sample guards /api/* when API_KEY is set; the load sends no key.
delete process.env.API_KEY;

@Module({
  // As `npm start` runs it (worker on), except the queue cap and the memory store's caps: the load
  // submits far more jobs than the sample's 100 ms handler works off, and the benchmark measures 202s,
  // not 429s or 503s.
  imports: [
    SampleModule.forRoot({
      ...options,
      store:
        options.store?.type === 'memory'
          ? { type: 'memory', maxRetainedJobs: 10_000_000, maxRetainedBytes: 2 ** 50 }
          : options.store,
      worker: { ...options.worker, maximumQueueSize: 10_000_000 },
    }),
  ],
  controllers: [PlainController],
})
class BenchHttpModule {}

const app = await NestFactory.create(BenchHttpModule, { logger: ['error', 'warn'] });
app.enableShutdownHooks();
await app.listen(0, '127.0.0.1');
const address = app.getHttpServer().address() as { port: number };
process.send!({ type: 'listening', port: address.port });
process.on('message', (message: { type: string }) => {
  if (message.type === 'cpu') process.send!({ type: 'cpu', usage: process.cpuUsage() });
  if (message.type === 'stop') void app.close().then(() => process.exit(0));
});
