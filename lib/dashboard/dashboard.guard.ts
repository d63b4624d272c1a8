import {
  type CanActivate,
  type ExecutionContext,
  HttpStatus,
  Inject,
  Injectable,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { isObservable, lastValueFrom } from 'rxjs';
import { ASYNC_ENDPOINTS_OPTIONS } from '../async-endpoints.module-definition.js';
import { InvalidAsyncEndpointsOptionsError } from '../errors/boot.errors.js';
import { setResponseHeader, type HttpResponse } from '../http/http-response.js';
import { problem, ProblemException } from '../http/problem-details.js';
import type { DashboardGuard, ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';

/**
 * Every dashboard response: scripts, styles and requests from the page's own origin only, no inline
 * code, no framing, no referrer, no MIME sniffing.
 */
export const DASHBOARD_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
    "base-uri 'self'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

/**
 * The guard of every dashboard route: sets the security headers, then runs `dashboard.guards` in
 * order (after the app's global guards, which Nest runs first). A guard that answers false gets a 403
 * problem naming it; a guard that throws answers with its own error.
 */
@Injectable()
export class DashboardGuards implements CanActivate, OnApplicationBootstrap {
  private guards: { name: string; guard: CanActivate }[] = [];

  constructor(
    private readonly moduleRef: ModuleRef,
    @Inject(ASYNC_ENDPOINTS_OPTIONS) private readonly options: ResolvedAsyncEndpointsOptions,
  ) {}

  /** Guard classes resolved once, at boot: one that cannot be created stops the boot, not a request. */
  async onApplicationBootstrap(): Promise<void> {
    if (!this.options.dashboard.enabled) return;
    this.guards = await Promise.all(this.options.dashboard.guards.map((guard) => this.resolve(guard)));
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const response = context.switchToHttp().getResponse<HttpResponse>();
    for (const [name, value] of Object.entries(DASHBOARD_SECURITY_HEADERS)) setResponseHeader(response, name, value);
    for (const { name, guard } of this.guards) {
      const verdict = guard.canActivate(context);
      const allowed = isObservable(verdict) ? await lastValueFrom(verdict) : await verdict;
      if (!allowed) {
        throw new ProblemException(problem(HttpStatus.FORBIDDEN, `The dashboard guard ${name} refused this request.`));
      }
    }
    return true;
  }

  private async resolve(guard: DashboardGuard): Promise<{ name: string; guard: CanActivate }> {
    if (typeof guard !== 'function') return { name: guard.constructor.name, guard };
    try {
      // The app's own instance when it registered the class: its dependencies resolve in its module.
      return { name: guard.name, guard: this.moduleRef.get(guard, { strict: false }) };
    } catch {
      try {
        return { name: guard.name, guard: await this.moduleRef.create(guard) };
      } catch (error) {
        throw new InvalidAsyncEndpointsOptionsError([
          // Nest's first line names the missing dependency; its further advice is about the library's module.
          `dashboard.guards: ${guard.name} could not be created (${String((error as Error).message).split('\n')[0]}). Register it as a ` +
            'provider of your app module, so that its dependencies resolve there, or pass an instance.',
        ]);
      }
    }
  }
}
