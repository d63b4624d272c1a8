import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { ASYNC_ENDPOINTS_OPTIONS } from '../async-endpoints.module-definition.js';
import { AsyncHandlerDeclarationError } from '../errors/boot.errors.js';
import { asyncEndpointWithoutHandler, asyncEndpointWithoutHandlerFix } from '../errors/messages.js';
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
 * The `@AsyncEndpoint` routes of the application. At boot it checks each against the handlers:
 * a name with no handler stops the boot where workers run; an API-only process logs it once.
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

  private checkHandlers(): void {
    const missing = [...new Set(this.routes.filter((route) => !this.handlers.get(route.name)))];
    for (const route of missing) {
      const message = asyncEndpointWithoutHandler(route);
      if (this.options.worker.enabled) {
        throw new AsyncHandlerDeclarationError(message + asyncEndpointWithoutHandlerFix(route.name));
      }
      this.logger.warn(`${message} in this API-only process; a worker process must provide it.`);
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
