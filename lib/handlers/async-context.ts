import type { LoggerService } from '@nestjs/common';
import type { JsonValue } from '../job/index.js';

/** Case-insensitive read access to the captured request headers. */
export interface CapturedHeaders {
  get(name: string): string | undefined;
  has(name: string): boolean;
  /** All captured headers, names in lower case. */
  toJSON(): Record<string, string>;
}

/** The job an attempt runs (`ctx.job`). */
export interface AsyncJobInfo {
  id: string;
  name: string;
  /** 1-based attempt number. */
  attempt: number;
  maxRetries: number;
  createdAt: Date;
}

/** What a handler receives for one attempt of one job. */
export interface AsyncContext<TRequest = unknown> {
  /** The payload; an instance of the handler's `requestType` when it declares one. */
  request: TRequest;
  headers: CapturedHeaders;
  routeParams: Readonly<Record<string, string>>;
  queryParams: Readonly<Record<string, string | string[]>>;
  job: AsyncJobInfo;
  /** Aborted on timeout, on cancellation, or at shutdown once the grace period is over. */
  signal: AbortSignal;
  /** 0..100 or a small JSON object, shown as `progress` in the job document. */
  reportProgress(progress: JsonValue): Promise<void>;
  /** Tags every line with the job id and name. */
  logger: LoggerService;
}

/** Implemented by providers marked with `@AsyncHandler`. The return value is the job's result. */
export interface AsyncEndpointHandler<TRequest = unknown, TResult = unknown> {
  handle(context: AsyncContext<TRequest>): Promise<TResult> | TResult;
}

export function capturedHeaders(headers: Record<string, string>): CapturedHeaders {
  // A Map, not an object: `constructor` or `__proto__` must not read as captured headers.
  const lower = new Map(Object.entries(headers).map(([key, value]) => [key.toLowerCase(), value]));
  return {
    get: (name) => lower.get(name.toLowerCase()),
    has: (name) => lower.has(name.toLowerCase()),
    toJSON: () => Object.fromEntries(lower),
  };
}
