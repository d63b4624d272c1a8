import { Injectable, type OnModuleInit, type Type } from '@nestjs/common';
import { ContextIdFactory, DiscoveryService, ModuleRef } from '@nestjs/core';
import { AsyncHandlerDeclarationError } from '../errors/boot.errors.js';
import { asyncHandlerWithoutHandle, duplicateAsyncHandler } from '../errors/messages.js';
import type { AsyncEndpointHandler } from './async-context.js';
import { AsyncHandlerMarker, type AsyncHandlerMetadata } from './async-handler.decorator.js';
import { libraryLogger } from '../observability/library-logger.js';

/** Nest's wrapper of a provider, as DiscoveryService hands it out (its own type is not exported). */
type InstanceWrapper = ReturnType<DiscoveryService['getProviders']>[number];

export interface RegisteredHandler {
  metadata: AsyncHandlerMetadata;
  className: string;
  wrapper: InstanceWrapper;
  /** sharedInstance's answer, kept (it cannot change once jobs run). */
  shared?: AsyncEndpointHandler | null;
}

/** The `@AsyncHandler` providers of the application, found at module init, by name. */
@Injectable()
export class HandlerRegistry implements OnModuleInit {
  private readonly logger = libraryLogger();
  private scanned: Map<string, RegisteredHandler> | undefined;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly moduleRef: ModuleRef,
  ) {}

  /** Scans at boot, so that declaration errors stop it; later calls reuse the scan. */
  onModuleInit(): void {
    this.handlers();
  }

  get(name: string): RegisteredHandler | undefined {
    return this.handlers().get(name);
  }

  names(): string[] {
    return [...this.handlers().keys()];
  }

  private handlers(): Map<string, RegisteredHandler> {
    if (this.scanned) return this.scanned;
    const handlers = new Map<string, RegisteredHandler>();
    for (const wrapper of this.discovery.getProviders({ metadataKey: AsyncHandlerMarker.KEY })) {
      const metadata = this.discovery.getMetadataByDecorator(AsyncHandlerMarker, wrapper);
      if (!metadata || !wrapper.metatype) continue;
      const className = (wrapper.metatype as Type).name;
      const existing = handlers.get(metadata.name);
      if (existing && existing.wrapper.metatype !== wrapper.metatype) {
        throw new AsyncHandlerDeclarationError(duplicateAsyncHandler(metadata.name, existing.className, className));
      }
      if (typeof (wrapper.metatype as Type).prototype?.handle !== 'function') {
        throw new AsyncHandlerDeclarationError(asyncHandlerWithoutHandle(className, metadata.name));
      }
      handlers.set(metadata.name, { metadata, className, wrapper });
    }
    if (handlers.size > 0) {
      this.logger.log(
        `Async handlers: ${[...handlers.values()].map((h) => `${h.metadata.name} (${h.className})`).join(', ')}`,
      );
    }
    this.scanned = handlers;
    return handlers;
  }

  /** The singleton instance of a handler with a static dependency tree; null when each job needs its own. */
  sharedInstance(handler: RegisteredHandler): AsyncEndpointHandler | null {
    if (handler.shared !== undefined) return handler.shared;
    const { wrapper } = handler;
    // Asked only to run jobs, which starts once Nest has resolved every static provider: the answer
    // is final, and Nest's wrapper took ~12 µs per job to give it again in a worker that was idle.
    handler.shared =
      wrapper.isDependencyTreeStatic() && !wrapper.isTransient ? (wrapper.instance as AsyncEndpointHandler) : null;
    return handler.shared;
  }

  /**
   * The instance to run one job with: the singleton for default-scoped handlers, a fresh instance
   * per job for request-scoped and transient ones (the job is registered as the "request").
   */
  async instanceFor(handler: RegisteredHandler, job: { id: string; name: string }): Promise<AsyncEndpointHandler> {
    const { wrapper } = handler;
    const shared = this.sharedInstance(handler);
    if (shared) return shared;
    const contextId = ContextIdFactory.create();
    this.moduleRef.registerRequestByContextId({ job }, contextId);
    return this.moduleRef.resolve(wrapper.metatype as Type<AsyncEndpointHandler>, contextId, { strict: false });
  }
}
