import { Inject, Injectable, Logger } from '@nestjs/common';
import { PATH_METADATA } from '@nestjs/common/constants.js';
import { ApplicationConfig, HttpAdapterHost, ModulesContainer } from '@nestjs/core';
import { ASYNC_ENDPOINTS_OPTIONS } from '../async-endpoints.module-definition.js';
import type { ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';
import { EndpointRegistry } from './endpoint-registry.js';
import { compileRoutes, expressBodyReader, type RouteMatcher } from './express-body-reader.js';
import { JobsController } from './jobs.controller.js';

/**
 * Ties the library into the app's HTTP layer before routes are registered: mounts the status
 * controller at `http.jobsPath` (or not at all), and on Express reads async endpoints' JSON bodies
 * ahead of the app's parser, for their body limit and problem+json errors.
 */
@Injectable()
export class HttpIntegration {
  private readonly logger = new Logger('AsyncEndpoints');

  constructor(
    adapterHost: HttpAdapterHost,
    modules: ModulesContainer,
    private readonly endpoints: EndpointRegistry,
    private readonly appConfig: ApplicationConfig,
    @Inject(ASYNC_ENDPOINTS_OPTIONS) private readonly options: ResolvedAsyncEndpointsOptions,
  ) {
    this.mountJobsController(modules);
    // init$ fires once the HTTP adapter exists: before app.init() registers body parsers and routes.
    adapterHost.init$.subscribe(() => this.installBodyReader(adapterHost));
  }

  private mountJobsController(modules: ModulesContainer): void {
    const { jobsPath } = this.options.http;
    if (jobsPath === false) {
      for (const module of modules.values()) module.controllers.delete(JobsController);
      return;
    }
    Reflect.defineMetadata(PATH_METADATA, jobsPath, JobsController);
  }

  private installBodyReader(adapterHost: HttpAdapterHost): void {
    const adapter = adapterHost.httpAdapter;
    if (adapter?.getType() !== 'express') return;
    let matcher: RouteMatcher | undefined;
    // Routes and the global prefix are final once the first request arrives.
    const matches: RouteMatcher = (method, path) => {
      matcher ??= compileRoutes(
        this.endpoints.routes.map((route) => ({ method: route.method, path: this.withPrefix(route.path) })),
      );
      return matcher(method, path);
    };
    adapter.use(expressBodyReader(matches, this.options.http.bodyLimitBytes));
    this.logger.debug?.(`Reading async endpoint bodies up to ${this.options.http.bodyLimitBytes} bytes`);
  }

  private withPrefix(path: string): string {
    const prefix = this.appConfig.getGlobalPrefix().replace(/^\/+|\/+$/g, '');
    return prefix ? `/${prefix}${path === '/' ? '' : path}` : path;
  }
}
