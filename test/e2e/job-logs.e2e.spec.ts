import { jest } from '@jest/globals';
import {
  Body,
  Controller,
  ConsoleLogger,
  Injectable,
  type INestApplication,
  Post,
  ValidationPipe,
} from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { AsyncEndpoint, AsyncEndpointsModule, AsyncHandler, type AsyncEndpointHandler } from '../../lib/index.js';
import { waitFor } from '../support/sample-app.js';
import { httpAdapter } from '../support/test-platforms.js';

/** An error message a client could have planted: an ANSI colour and a forged second log line. */
const HOSTILE_MESSAGE = 'downstream said \u001b[31mred\u001b[0m\r\nERROR [AsyncEndpoints] forged line';

@AsyncHandler('Hostile', { maxRetries: 0 })
@Injectable()
class HostileHandler implements AsyncEndpointHandler<object> {
  async handle(): Promise<never> {
    // Public (expose: true), so that its message reaches the log at all with exposeErrorDetails off.
    throw Object.assign(new Error(HOSTILE_MESSAGE), { expose: true });
  }
}

@Controller('hostile')
class HostileController {
  @Post()
  @AsyncEndpoint('Hostile')
  submit(@Body() _body: object) {}

  /** A pre-validation that fails unexpectedly, with request text in its message. */
  @Post('crash')
  @AsyncEndpoint('Hostile')
  crash(@Body() body: { note: string }) {
    throw new Error(`could not check ${body.note}`);
  }
}

interface JsonLogRecord {
  level: string;
  context?: string;
  message: string;
  params?: Record<string, unknown>;
}

/**
 * An app logging through `logger`, with what ConsoleLogger writes to the process streams kept in
 * `written` (and out of the test output).
 */
async function startLoggingApp(logger: ConsoleLogger, written: string[]): Promise<INestApplication> {
  for (const stream of [process.stdout, process.stderr]) {
    jest.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
  }
  const moduleRef = await Test.createTestingModule({
    imports: [ScheduleModule.forRoot(), AsyncEndpointsModule.forRoot({ worker: { pollingIntervalMs: 50 } })],
    controllers: [HostileController],
    providers: [HostileHandler],
  }).compile();
  const app = moduleRef.createNestApplication(httpAdapter('express'), { logger });
  app.useGlobalPipes(new ValidationPipe({ transform: true }));
  await app.listen(0, '127.0.0.1');
  return app;
}

describe('Log lines with Nest JSON console logger', () => {
  let app: INestApplication;
  const written: string[] = [];

  beforeAll(async () => {
    app = await startLoggingApp(new ConsoleLogger({ json: true }), written);
  });
  afterAll(async () => {
    await app?.close();
    jest.restoreAllMocks();
  });

  function records(): JsonLogRecord[] {
    return written
      .join('')
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as JsonLogRecord);
  }

  it('logs a failed job with jobId and jobName as fields and its error message with control characters escaped', async () => {
    const submitted = await request(app.getHttpServer()).post('/hostile').send({}).expect(202);
    const id = submitted.body.id as string;
    const failure = await waitFor(async () =>
      records().find((record) => record.level === 'error' && record.params?.jobId === id),
    );
    expect(failure.context).toBe('AsyncEndpoints');
    expect(failure.params).toEqual({ jobId: id, jobName: 'Hostile' });
    expect(failure.message).toContain(`[Hostile ${id}] Failed`);
    expect(failure.message).toContain(
      'downstream said \\u001b[31mred\\u001b[0m\\r\\nERROR [AsyncEndpoints] forged line',
    );
    expect(failure.message).not.toMatch(/[\u0000-\u001f]/);
  });

  it('logs an unexpected error of an async endpoint route (500) with the control characters of its message escaped', async () => {
    await request(app.getHttpServer()).post('/hostile/crash').send({ note: HOSTILE_MESSAGE }).expect(500);
    const logged = await waitFor(async () =>
      records().find(
        (record) =>
          record.level === 'error' && record.message.startsWith('Unexpected error on an async endpoint route'),
      ),
    );
    expect(logged.message).toContain(
      'could not check downstream said \\u001b[31mred\\u001b[0m\\r\\nERROR [AsyncEndpoints] forged line',
    );
    expect(logged.message).not.toMatch(/[\u0000-\u001f]/);
  });
});

describe("Log lines with Nest's text console logger", () => {
  let app: INestApplication;
  const written: string[] = [];

  beforeAll(async () => {
    app = await startLoggingApp(new ConsoleLogger({ colors: false }), written);
  });
  afterAll(async () => {
    await app?.close();
    jest.restoreAllMocks();
  });

  it('prints the stack of an unexpected route error with the message escaped: no forged line, no raw control character', async () => {
    await request(app.getHttpServer()).post('/hostile/crash').send({ note: HOSTILE_MESSAGE }).expect(500);
    const output = await waitFor(async () => {
      const text = written.join('');
      return text.includes('Unexpected error on an async endpoint route') && text.includes('    at ')
        ? text
        : undefined;
    });
    expect(output.split('\n').filter((line) => line.startsWith('ERROR [AsyncEndpoints] forged line'))).toEqual([]);
    expect(output).not.toMatch(/[\u0000-\u0009\u000b-\u001f]/);
    expect(output).toContain(
      'could not check downstream said \\u001b[31mred\\u001b[0m\\r\\nERROR [AsyncEndpoints] forged line',
    );
  });
});
