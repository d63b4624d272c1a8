import { type CanActivate, type ExecutionContext, Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import { timingSafeEqual } from 'node:crypto';

/** The key `/api/*` requests must send as `X-API-Key`; undefined leaves the API open. */
export const SAMPLE_API_KEY = Symbol('SAMPLE_API_KEY');

/**
 * When `API_KEY` is set, every `/api/*` request needs `X-API-Key: <key>`; others get a 401 problem
 * (the async endpoints' problem+json filter answers it). `/jobs/:id` and `/health` stay open: a job
 * id is an unguessable capability, and probes carry no key. A global guard, so that a new `/api`
 * route cannot be left out by mistake.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly key: Buffer | null;

  constructor(@Inject(SAMPLE_API_KEY) key: string | undefined) {
    this.key = key ? Buffer.from(key) : null;
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.key === null || context.getType() !== 'http') return true;
    const request = context.switchToHttp().getRequest<{ url: string; originalUrl?: string; headers: Record<string, unknown> }>();
    const path = (request.originalUrl ?? request.url).split('?')[0]!;
    if (path !== '/api' && !path.startsWith('/api/')) return true;
    const header = request.headers['x-api-key'];
    const given = Buffer.from(typeof header === 'string' ? header : '');
    if (given.length === this.key.length && timingSafeEqual(given, this.key)) return true;
    throw new UnauthorizedException('A valid X-API-Key header is required.');
  }
}
