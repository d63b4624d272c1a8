import type { LoggerService } from '@nestjs/common';
import { capturedHeaders, type AsyncContext, type AsyncJobInfo } from '../handlers/async-context.js';
import type { JsonValue } from '../job/index.js';

/** What the context of a handler's unit test holds; everything is optional. */
export interface AsyncContextInit<TRequest> {
  /** The payload, as the handler receives it (build an instance of its requestType yourself). */
  request?: TRequest;
  /** Request headers; read back case-insensitively, as in production. */
  headers?: Record<string, string>;
  routeParams?: Record<string, string>;
  queryParams?: Record<string, string | string[]>;
  /** Defaults: id 'test-job', name 'Test', attempt 1, maxRetries 3, createdAt now. */
  job?: Partial<AsyncJobInfo>;
}

/** One line a handler wrote to `ctx.logger`. */
export interface LoggedLine {
  level: 'log' | 'error' | 'warn' | 'debug' | 'verbose' | 'fatal';
  message: string;
}

/** What `createAsyncContext` returns: the context, and what the test reads back from it. */
export interface TestAsyncContext<TRequest> {
  /** Pass to `handler.handle(ctx)`. */
  ctx: AsyncContext<TRequest>;
  /** Every value the handler reported with `ctx.reportProgress`, in order, as the store keeps it (JSON). */
  progress: JsonValue[];
  /** Every line the handler wrote to `ctx.logger`. */
  logs: LoggedLine[];
  /** Aborts `ctx.signal`, as a timeout, a cancellation or shutdown would. */
  abort(reason?: unknown): void;
}

/**
 * An AsyncContext for calling a handler's `handle()` directly in a unit test, without Nest, a store
 * or a worker. Progress reported after the abort is dropped, as the worker drops it.
 */
export function createAsyncContext<TRequest = unknown>(
  init: AsyncContextInit<TRequest> = {},
): TestAsyncContext<TRequest> {
  const controller = new AbortController();
  const progress: JsonValue[] = [];
  const logs: LoggedLine[] = [];
  const record = (level: LoggedLine['level']) => (message: unknown) =>
    void logs.push({ level, message: String(message) });
  const logger: LoggerService = {
    log: record('log'),
    error: record('error'),
    warn: record('warn'),
    debug: record('debug'),
    verbose: record('verbose'),
    fatal: record('fatal'),
  };
  const ctx: AsyncContext<TRequest> = {
    request: init.request as TRequest,
    headers: capturedHeaders(init.headers ?? {}),
    routeParams: Object.freeze({ ...init.routeParams }),
    queryParams: Object.freeze({ ...init.queryParams }),
    job: { id: 'test-job', name: 'Test', attempt: 1, maxRetries: 3, createdAt: new Date(), ...init.job },
    signal: controller.signal,
    reportProgress: async (value) => {
      // A JSON copy, as stored: a value that is not JSON fails here as it would in the worker.
      if (!controller.signal.aborted) progress.push(JSON.parse(JSON.stringify(value)) as JsonValue);
    },
    logger,
  };
  return { ctx, progress, logs, abort: (reason) => controller.abort(reason) };
}
