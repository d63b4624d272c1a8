import type { Type } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';

export interface AsyncHandlerOptions {
  /** Retries after the first attempt, instead of `jobManager.defaultMaxRetries`. */
  maxRetries?: number;
  /** Per-attempt time budget in ms, instead of `worker.jobTimeoutMinutes`. */
  timeoutMs?: number;
  /** Backoff base for this handler's retries, instead of `jobManager.retryDelayBaseSeconds`. */
  retryDelayBaseSeconds?: number;
  /** The payload's class: `ctx.request` is an instance of it (class-transformer). */
  requestType?: Type<unknown>;
}

export interface AsyncHandlerMetadata extends AsyncHandlerOptions {
  name: string;
}

/** Discoverable marker of handler providers (DiscoveryService.createDecorator). */
export const AsyncHandlerMarker = DiscoveryService.createDecorator<AsyncHandlerMetadata>();

/**
 * Marks a provider as the handler of the async endpoint `name`. The provider implements
 * `AsyncEndpointHandler` and must be listed in a module's `providers`.
 */
export function AsyncHandler(name: string, options: AsyncHandlerOptions = {}): ClassDecorator {
  if (typeof name !== 'string' || name.trim() === '') {
    throw new TypeError('@AsyncHandler(name) needs a non-empty name, the one its @AsyncEndpoint(name) routes use.');
  }
  return AsyncHandlerMarker({ name, ...options });
}
