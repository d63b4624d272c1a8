import type { Type } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { MAX_TIMER_MS } from '../timers/max-timer.js';

/** `@AsyncHandler(name, options)`: this handler's settings, over the module's defaults. */
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
  const problems = handlerOptionProblems(options);
  if (problems.length > 0) {
    throw new TypeError(`@AsyncHandler('${name}') has invalid options: ${problems.join('; ')}.`);
  }
  return AsyncHandlerMarker({ name, ...options });
}

function handlerOptionProblems({
  maxRetries,
  timeoutMs,
  retryDelayBaseSeconds,
  requestType,
}: AsyncHandlerOptions): string[] {
  const problems: string[] = [];
  if (maxRetries !== undefined && !(Number.isInteger(maxRetries) && maxRetries >= 0 && maxRetries <= 100)) {
    problems.push(`maxRetries = ${maxRetries}: must be an integer from 0 to 100`);
  }
  if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs >= 1 && timeoutMs <= MAX_TIMER_MS)) {
    problems.push(`timeoutMs = ${timeoutMs}: must be an integer from 1 to ${MAX_TIMER_MS}`);
  }
  if (
    retryDelayBaseSeconds !== undefined &&
    !(typeof retryDelayBaseSeconds === 'number' && retryDelayBaseSeconds > 0)
  ) {
    problems.push(`retryDelayBaseSeconds = ${retryDelayBaseSeconds}: must be a positive number`);
  }
  if (requestType !== undefined && typeof requestType !== 'function') {
    problems.push('requestType: must be a class');
  }
  return problems;
}
