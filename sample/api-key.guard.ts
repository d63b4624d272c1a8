import { type CanActivate, type ExecutionContext, Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import { PATH_METADATA } from '@nestjs/common/constants.js';
import { Reflector } from '@nestjs/core';
import { timingSafeEqual } from 'node:crypto';

/** The key `/api/*` requests must send as `X-API-Key`; undefined leaves the API open. */
export const SAMPLE_API_KEY = Symbol('SAMPLE_API_KEY');

/**
 * When `API_KEY` is set, every route declared under `api` needs `X-API-Key: <key>`; others get a 401
 * problem (the async endpoints' problem+json filter answers it). `/jobs/:id` and `/health` stay open: a
 * job id is an unguessable capability, and probes carry no key. A global guard, so that a new `/api`
 * route cannot be left out by mistake. It reads the route's declared path, not the request's: the
 * router also sends `/API/process` and `/api/process/` to `/api/process`.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly key: Buffer | null;

  constructor(
    @Inject(SAMPLE_API_KEY) key: string | undefined,
    private readonly reflector: Reflector,
  ) {
    this.key = key ? Buffer.from(key) : null;
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.key === null || context.getType() !== 'http' || !this.underApi(context)) return true;
    const request = context.switchToHttp().getRequest<{ headers: Record<string, unknown> }>();
    const header = request.headers['x-api-key'];
    const given = Buffer.from(typeof header === 'string' ? header : '');
    if (given.length === this.key.length && timingSafeEqual(given, this.key)) return true;
    throw new UnauthorizedException('A valid X-API-Key header is required.');
  }

  /** Whether the route's controller path and its own path, joined, start with the segment `api`. */
  private underApi(context: ExecutionContext): boolean {
    const paths = (target: Parameters<Reflector['get']>[1]) =>
      [this.reflector.get<string | string[] | undefined>(PATH_METADATA, target) ?? ''].flat();
    return paths(context.getClass()).some((controller) =>
      paths(context.getHandler()).some((route) => /^api(\/|$)/i.test(`${controller}/${route}`.replace(/^\/+/, ''))),
    );
  }
}
