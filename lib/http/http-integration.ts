import { Inject, Injectable, type Type } from '@nestjs/common';
import { ApplicationConfig, HttpAdapterHost } from '@nestjs/core';
import { ASYNC_ENDPOINTS_OPTIONS } from '../async-endpoints.module-definition.js';
import type { ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';
import {
  DASHBOARD_CONTROLLER,
  type DashboardController,
  mountDashboardController,
} from '../dashboard/dashboard.controller.js';
import { runSubmitChecksLast } from './async-endpoint.decorator.js';
import { EndpointRegistry } from './endpoint-registry.js';
import {
  compileRoutes,
  expressBodyReader,
  expressStatusRouteReader,
  type RouteMatcher,
  type RoutingOptions,
} from './express-body-reader.js';
import { configureFastifyRoutes, type FastifyInstanceLike } from './fastify-routes.js';
import { JOBS_CONTROLLER, type JobsController, mountJobsController } from './jobs.controller.js';
import { expressRouterSettings } from './nest-internals.adapter.js';
import { libraryLogger } from '../observability/library-logger.js';

/**
 * Ties the library into the app's HTTP layer before routes are registered: mounts the status
 * controller at `http.jobsPath` (or not at all) and the dashboard at `dashboard.path` (when enabled), and on Express reads async endpoints' JSON bodies
 * ahead of the app's parser (on Fastify, sets their route body limit and error handler), for their
 * body limit and problem+json errors.
 */
@Injectable()
export class HttpIntegration {
  private readonly logger = libraryLogger();

  constructor(
    adapterHost: HttpAdapterHost,
    @Inject(JOBS_CONTROLLER) jobsController: Type<JobsController> | null,
    @Inject(DASHBOARD_CONTROLLER) dashboardController: Type<DashboardController> | null,
    private readonly endpoints: EndpointRegistry,
    private readonly appConfig: ApplicationConfig,
    @Inject(ASYNC_ENDPOINTS_OPTIONS) private readonly options: ResolvedAsyncEndpointsOptions,
  ) {
    if (jobsController) mountJobsController(jobsController, options.http.jobsPath);
    if (dashboardController) mountDashboardController(dashboardController, options.dashboard);
    // Providers are created before the app registers its routes, which read the guards.
    for (const route of endpoints.routes) {
      runSubmitChecksLast((route.controllerClass.prototype as Record<string, object>)[route.methodName]!);
    }
    // init$ fires once the HTTP adapter exists: before app.init() registers body parsers and routes.
    adapterHost.init$.subscribe(() => this.installBodyReader(adapterHost));
  }

  private installBodyReader(adapterHost: HttpAdapterHost): void {
    const adapter = adapterHost.httpAdapter;
    const type = adapter?.getType();
    // Express: request paths, matched as the app's router matches them (read once it exists, at the
    // first request). Fastify: the paths routes declare, compared as they are.
    const routing = (): RoutingOptions => {
      if (type !== 'express') return { caseSensitive: true, strict: false };
      return expressRouterSettings(adapter.getInstance<object>());
    };
    let matcher: { prefix: string; matches: RouteMatcher } | undefined;
    // Compiled when first needed: as routes are registered (Fastify) or at the first request
    // (Express). Again if the global prefix changed since (a plugin's routes registered before it was set).
    const matches: RouteMatcher = (method, path) => {
      const prefix = this.appConfig.getGlobalPrefix();
      if (matcher?.prefix !== prefix) {
        const routes = this.endpoints.routes.map((route) => ({
          method: route.method,
          path: this.withPrefix(route.path),
        }));
        matcher = { prefix, matches: compileRoutes(routes, routing()) };
      }
      return matcher.matches(method, path);
    };
    // The dashboard's actions take JSON bodies too: read the same way, their mistakes are problem+json.
    const dashboardActions = this.dashboardActions(routing);
    const bodyRoutes: RouteMatcher = (method, path) => matches(method, path) || dashboardActions(method, path);
    const { bodyLimitBytes: limit, maxJsonDepth } = this.options.http;
    switch (type) {
      case 'express':
        adapter.use(expressBodyReader(bodyRoutes, limit, maxJsonDepth));
        adapter.use(expressStatusRouteReader(this.statusRoutes(routing), limit));
        break;
      case 'fastify':
        configureFastifyRoutes(adapter.getInstance<FastifyInstanceLike>(), bodyRoutes, this.statusRoutes(routing), {
          bodyLimitBytes: limit,
          maxJsonDepth,
        });
        break;
      default:
        return;
    }
    this.logger.debug?.(`Reading async endpoint bodies up to ${limit} bytes`);
  }

  /** `GET`, `HEAD` and `DELETE <jobsPath>/:id`, once the global prefix is final (the first request). */
  private statusRoutes(routing: () => RoutingOptions): RouteMatcher {
    const { jobsPath } = this.options.http;
    if (jobsPath === false) return () => false;
    let matcher: RouteMatcher | undefined;
    return (method, path) => {
      if (!matcher) {
        const route = this.withPrefix(`/${jobsPath.replace(/^\/+|\/+$/g, '')}/:id`);
        matcher = compileRoutes(
          ['GET', 'HEAD', 'DELETE'].map((verb) => ({ method: verb, path: route })),
          routing(),
        );
      }
      return matcher(method, path);
    };
  }

  /** `POST <dashboard.path>/api/jobs/:id/retry`, `.../cancel` and `.../api/purge`, once the global prefix is final. */
  private dashboardActions(routing: () => RoutingOptions): RouteMatcher {
    const { enabled, path } = this.options.dashboard;
    if (!enabled) return () => false;
    let matcher: RouteMatcher | undefined;
    return (method, requestPath) => {
      matcher ??= compileRoutes(
        ['jobs/:id/retry', 'jobs/:id/cancel', 'purge'].map((action) => ({
          method: 'POST',
          path: this.withPrefix(`/${path}/api/${action}`),
        })),
        routing(),
      );
      return matcher(method, requestPath);
    };
  }

  private withPrefix(path: string): string {
    const prefix = this.appConfig.getGlobalPrefix().replace(/^\/+|\/+$/g, '');
    return prefix ? `/${prefix}${path === '/' ? '' : path}` : path;
  }
}
