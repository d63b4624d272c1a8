import { type CanActivate, type ExecutionContext, HttpStatus, Inject, Injectable } from '@nestjs/common';
import { problem, ProblemException } from '../lib/index.js';
import { isSampleApiKey, SAMPLE_API_KEY } from './api-key.guard.js';

/**
 * The dashboard's guard (`dashboard.guards`): when `API_KEY` is set, its page and API need the key,
 * as `X-API-Key` (scripts) or as the password of HTTP Basic authentication (a browser asks for it once,
 * on the 401's `WWW-Authenticate`, then sends it with every request of the page).
 */
@Injectable()
export class DashboardKeyGuard implements CanActivate {
  constructor(@Inject(SAMPLE_API_KEY) private readonly key: string | undefined) {}

  canActivate(context: ExecutionContext): boolean {
    if (!this.key) return true;
    const { headers } = context.switchToHttp().getRequest<{ headers: Record<string, unknown> }>();
    const header = headers['x-api-key'];
    if (typeof header === 'string' && isSampleApiKey(header, this.key)) return true;
    const basic = /^Basic ([A-Za-z0-9+/=]+)$/.exec(String(headers.authorization ?? ''));
    const password = basic ? Buffer.from(basic[1]!, 'base64').toString('utf8').split(':').slice(1).join(':') : '';
    if (isSampleApiKey(password, this.key)) return true;
    throw new ProblemException(
      problem(HttpStatus.UNAUTHORIZED, 'The dashboard needs the API key: as X-API-Key, or as the Basic password.'),
      { 'WWW-Authenticate': 'Basic realm="jobs dashboard", charset="UTF-8"' },
    );
  }
}
