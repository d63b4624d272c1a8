import {
  Body,
  type CallHandler,
  type CanActivate,
  Controller,
  type ExecutionContext,
  ForbiddenException,
  type INestApplication,
  Injectable,
  type NestInterceptor,
  Post,
  UseGuards,
} from '@nestjs/common';
import { IsString } from 'class-validator';
import { map, type Observable } from 'rxjs';
import request from 'supertest';
import { AsyncEndpoint, AsyncHandler, JobStore, type AsyncEndpointHandler } from '../../lib/index.js';
import { startTestApp } from '../support/test-app.js';
import { PLATFORMS } from '../support/test-platforms.js';

/** Refuses requests without `X-Allow: yes`. */
@Injectable()
class AllowGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const { headers } = context.switchToHttp().getRequest<{ headers: Record<string, unknown> }>();
    if (headers['x-allow'] !== 'yes') throw new ForbiddenException('Send X-Allow: yes.');
    return true;
  }
}

class ItemRequest {
  @IsString() name!: string;
}

@Controller('items')
class ItemsController {
  @Post('guard-above')
  @UseGuards(AllowGuard)
  @AsyncEndpoint('Item')
  guardAbove(@Body() _body: ItemRequest): void {}

  @Post('guard-below')
  @AsyncEndpoint('Item')
  @UseGuards(AllowGuard)
  guardBelow(@Body() _body: ItemRequest): void {}

  @Post('arguments')
  @AsyncEndpoint('Item')
  withOptional(@Body() body: ItemRequest, optional = 'default'): object {
    // The method gets its own arguments only, as Nest passes them.
    return { name: body.name, received: arguments.length, optional };
  }
}

@AsyncHandler('Item')
@Injectable()
class ItemHandler implements AsyncEndpointHandler<ItemRequest, null> {
  async handle(): Promise<null> {
    return null;
  }
}

/** Marks what the route answers: results still flow through the app's interceptors. */
class MarkingInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(map((value) => ({ ...(value as object), marked: true })));
  }
}

describe.each(PLATFORMS)('The submit pipeline (%s)', (platform) => {
  let app: INestApplication;
  let store: JobStore;
  const http = () => request(app.getHttpServer());
  const storedJobs = async () => (await store.stats(Date.now())).waiting;

  beforeAll(async () => {
    app = await startTestApp(
      { worker: { enabled: false } },
      {
        controllers: [ItemsController],
        providers: [ItemHandler],
        platform,
        configure: (nest) => nest.useGlobalInterceptors(new MarkingInterceptor()),
      },
    );
    store = app.get(JobStore);
  });
  afterAll(async () => {
    await app?.close();
  });

  describe.each(['guard-above', 'guard-below'])('a method guard declared %s @AsyncEndpoint', (route) => {
    it("runs before the library's checks: a refused request gets the guard's answer", async () => {
      const before = await storedJobs();
      const badHeader = await http()
        .post(`/items/${route}`)
        .set('X-Async-Request-Id', 'not-a-uuid')
        .send({ name: 'a' })
        .expect(403);
      expect(badHeader.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(badHeader.body.detail).toBe('Send X-Allow: yes.');
      // Fastify answers a type it has no parser for before any guard (its own 415).
      if (platform === 'express') {
        const notJson = await http()
          .post(`/items/${route}`)
          .set('Content-Type', 'text/plain')
          .send('name=a')
          .expect(403);
        expect(notJson.body.detail).toBe('Send X-Allow: yes.');
      }
      expect(await storedJobs()).toBe(before);
    });

    it('then the checks, before the pipes: 415 and the idempotency headers, then validation', async () => {
      const before = await storedJobs();
      const allowed = () => http().post(`/items/${route}`).set('X-Allow', 'yes');
      const notJson = await allowed().set('Content-Type', 'text/plain').send('name=a').expect(415);
      expect(notJson.headers['content-type']).toMatch(/^application\/problem\+json/);
      const badHeader = await allowed().set('X-Async-Request-Id', 'not-a-uuid').send({ name: 'a' }).expect(400);
      expect(badHeader.body.detail).toContain('X-Async-Request-Id must be a UUID');
      const invalid = await allowed().send({ name: 42 }).expect(400);
      expect(invalid.body.errors).toEqual([expect.stringContaining('name')]);
      expect(await storedJobs()).toBe(before);

      const accepted = await allowed().send({ name: 'a' }).expect(202);
      expect(accepted.headers.location).toBe(`/jobs/${accepted.body.id}`);
      expect(accepted.body).toMatchObject({ name: 'Item', status: 'Queued', marked: true });
      expect(await storedJobs()).toBe(before + 1);
    });
  });

  it('calls the method with its own arguments only and stores what it returns', async () => {
    const accepted = await http().post('/items/arguments').send({ name: 'b' }).expect(202);
    expect(accepted.headers['retry-after']).toBe('1');
    expect(accepted.headers['cache-control']).toBe('no-store');
    expect((await store.getJob(accepted.body.id))!.payload).toEqual({ name: 'b', received: 1, optional: 'default' });
  });
});
