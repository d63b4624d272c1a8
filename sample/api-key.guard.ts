import { type CanActivate, type ExecutionContext, Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import { PATH_METADATA } from '@nestjs/common/constants.js';
import { Reflector } from '@nestjs/core';
import { timingSafeEqual } from 'node:crypto';

/** The key `/api/*` requests must send as `X-API-Key`; undefined leaves the API open. */
export const SAMPLE_API_KEY = Symbol('SAMPLE_API_KEY');

/** Whether `given` is the key, compared in constant time. */
export function isSampleApiKey(given: string, key: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(key);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * When `API_KEY` is set, every route declared under `api` needs `X-API-Key: <key>`; others get a 401
 * problem (the async endpoints' problem+json filter answers it). `/jobs/:id` and `/health` stay open: a
 * job id is an unguessable capability, and probes carry no key. A global guard, so that a new `/api`
 * route cannot be left out by mistake. It reads the route's declared path, not the request's: the
 * router also sends `/API/process` and `/api/process/` to `/api/process`.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    @Inject(SAMPLE_API_KEY) private readonly key: string | undefined,
    private readonly reflector: Reflector,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    if (!this.key || context.getType() !== 'http' || !this.underApi(context)) return true;
    const request = context.switchToHttp().getRequest<{ headers: Record<string, unknown> }>();
    const header = request.headers['x-api-key'];
    if (isSampleApiKey(typeof header === 'string' ? header : '', this.key)) return true;
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
