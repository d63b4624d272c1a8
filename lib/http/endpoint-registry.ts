import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { ASYNC_ENDPOINTS_OPTIONS } from '../async-endpoints.module-definition.js';
import { asyncEndpointWithoutHandler } from '../errors/messages.js';
import { HandlerRegistry } from '../handlers/handler-registry.js';
import type { ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';
import { AsyncEndpointMarker, type AsyncEndpointMetadata } from './async-endpoint.decorator.js';
import { controllerPaths, routeMethod, routePaths } from './nest-internals.adapter.js';
import { libraryLogger } from '../observability/library-logger.js';

export interface AsyncEndpointRoute {
  name: string;
  /** HTTP method in upper case, or 'ALL'. */
  method: string;
  /** Route path without the global prefix, leading slash, Nest path syntax. */
  path: string;
  controller: string;
  /** The controller class and method, for decorating the route (OpenAPI). */
  controllerClass: abstract new (...args: never[]) => object;
  methodName: string;
}

/**
 * The `@AsyncEndpoint` routes of the application. At boot it checks each against the handlers and
 * warns once about a name with no handler in this process (its jobs wait for a worker that has one).
 */
@Injectable()
export class EndpointRegistry implements OnModuleInit {
  private readonly logger = libraryLogger();
  private scanned: AsyncEndpointRoute[] | undefined;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly handlers: HandlerRegistry,
    @Inject(ASYNC_ENDPOINTS_OPTIONS) private readonly options: ResolvedAsyncEndpointsOptions,
  ) {}

  onModuleInit(): void {
    this.checkHandlers();
  }

  /** Scanned on first use: controllers are known before the app registers its routes. */
  get routes(): AsyncEndpointRoute[] {
    this.scanned ??= this.scan();
    return this.scanned;
  }

  /** Whether an `@AsyncEndpoint` of this name is declared. */
  declares(name: string): boolean {
    return this.routes.some((route) => route.name === name);
  }

  private scan(): AsyncEndpointRoute[] {
    const routes: AsyncEndpointRoute[] = [];
    for (const wrapper of this.discovery.getControllers()) {
      const controller = wrapper.metatype as (new (...args: never[]) => object) | undefined;
      if (!controller?.prototype) continue;
      const basePaths = controllerPaths(controller);
      for (const methodName of this.scanner.getAllMethodNames(controller.prototype)) {
        const handler = (controller.prototype as Record<string, unknown>)[methodName] as object;
        const endpoint = Reflect.getMetadata(AsyncEndpointMarker.KEY, handler) as AsyncEndpointMetadata | undefined;
        if (!endpoint) continue;
        const method = routeMethod(handler);
        for (const base of basePaths) {
          for (const own of routePaths(handler)) {
            routes.push({
              name: endpoint.name,
              method,
              path: joinPath(base, own),
              controller: controller.name,
              controllerClass: controller,
              methodName,
            });
          }
        }
      }
    }
    return routes;
  }

  /** Jobs are routed by name: a name without a handler here waits for a worker process that has one. */
  private checkHandlers(): void {
    const missing = [...new Set(this.routes.filter((route) => !this.handlers.get(route.name)))];
    for (const route of missing) {
      const where = this.options.worker.enabled
        ? "this process's worker does not run"
        : 'this API-only process does not run';
      this.logger.warn(asyncEndpointWithoutHandler(route, where));
    }
  }
}

function joinPath(...parts: string[]): string {
  const joined = parts
    .map((part) => part.replace(/^\/+|\/+$/g, ''))
    .filter(Boolean)
    .join('/');
  return `/${joined}`;
}
