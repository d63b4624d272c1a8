import { Inject, Injectable } from '@nestjs/common';
import { ASYNC_ENDPOINTS_OPTIONS } from '../async-endpoints.module-definition.js';
import { AsyncEndpointsService } from '../async-endpoints.service.js';
import { toJobDocument, type JobDocument, type JsonValue } from '../job/index.js';
import type { AsyncEndpointRequest, ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';
import { headerCapture, queryParamCapture } from './capture-headers.js';
import { setResponseHeader, type HttpResponse } from './http-response.js';
import { readIdempotencyHeaders } from './idempotency.js';
import { JobLocations } from './job-locations.js';
import { checkedIdempotencyHeaders } from './submit-checks.guard.js';

export interface HttpRequest extends AsyncEndpointRequest {
  headers: Record<string, string | string[] | undefined>;
  params?: Record<string, string>;
  query?: Record<string, string | string[]>;
}

export type { HttpResponse } from './http-response.js';

/**
 * The second half of `@AsyncEndpoint`: once guards, pipes and the method's pre-validation ran,
 * stores the job and sets `Location`, `Retry-After` and `Cache-Control`; the method answers the
 * job document (with the route's 202). Called by the method `@AsyncEndpoint` wraps, not by an
 * interceptor: any interceptor puts every request of the route through Nest's rxjs pipeline, a
 * sizeable share of a submit's CPU time.
 */
@Injectable()
export class JobSubmitter {
  private readonly captureHeaders: (headers: HttpRequest['headers']) => Record<string, string>;
  private readonly captureQueryParams: (query: Record<string, unknown>) => Record<string, string | string[]>;
  private readonly retryAfter: string;

  constructor(
    private readonly service: AsyncEndpointsService,
    private readonly locations: JobLocations,
    @Inject(ASYNC_ENDPOINTS_OPTIONS) private readonly options: ResolvedAsyncEndpointsOptions,
  ) {
    this.captureHeaders = headerCapture(options.http.captureHeaders);
    this.captureQueryParams = queryParamCapture(options.http.captureQueryParams);
    this.retryAfter = String(options.http.retryAfterSeconds);
  }

  async submit(name: string, payload: unknown, request: HttpRequest, response: HttpResponse): Promise<JobDocument> {
    const { headers } = request;
    // As SubmitChecks read them before the pipes and the method ran.
    const { jobId, idempotencyKey } = checkedIdempotencyHeaders(request) ?? readIdempotencyHeaders(headers);
    const { job } = await this.service.submitJob(name, toJson(payload), {
      jobId,
      idempotencyKey,
      headers: this.captureHeaders(headers),
      owner: this.options.jobOwner?.(request) ?? undefined,
      routeParams: { ...(request.params ?? {}) },
      queryParams: this.captureQueryParams(request.query ?? {}),
      traceContext: traceContextOf(headers),
    });
    const location = this.locations.of(job.id);
    if (location) setResponseHeader(response, 'Location', location);
    setResponseHeader(response, 'Retry-After', this.retryAfter);
    setResponseHeader(response, 'Cache-Control', 'no-store');
    return toJobDocument(job, location, this.options.http.exposeErrorDetails);
  }
}

/** The W3C trace context headers of the request, or undefined when it has none. */
function traceContextOf(headers: HttpRequest['headers']): Record<string, string> | undefined {
  const { traceparent, tracestate } = headers;
  if (typeof traceparent !== 'string' && typeof tracestate !== 'string') return undefined;
  const picked: Record<string, string> = {};
  if (typeof traceparent === 'string') picked.traceparent = traceparent;
  if (typeof tracestate === 'string') picked.tracestate = tracestate;
  return picked;
}

/** Pipes may hand over class instances; the store keeps plain JSON, as JSON.stringify would write it. */
export function toJson(payload: unknown): JsonValue {
  if (payload === undefined) return {};
  const copy = plainJson(payload, 0);
  return copy !== NOT_PLAIN ? copy : (JSON.parse(JSON.stringify(payload)) as JsonValue);
}

const NOT_PLAIN = Symbol('not plain JSON');

/** Deeper than this, JSON.stringify decides (it also reports cycles). */
const MAX_PLAIN_DEPTH = 64;

/**
 * The JSON copy of a value made of strings, finite numbers, booleans, null, arrays and objects without
 * `toJSON` (class instances included, as JSON.stringify sees them: their own enumerable properties),
 * without a serialisation round trip; NOT_PLAIN for anything whose JSON form needs JSON.stringify's
 * rules (toJSON, undefined or functions in arrays, non-finite numbers, boxed primitives, bigints,
 * `__proto__` keys, deep or cyclic structures).
 */
function plainJson(value: unknown, depth: number): JsonValue | typeof NOT_PLAIN {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      // -0 is written as 0.
      return Number.isFinite(value) ? value + 0 : NOT_PLAIN;
    case 'object':
      break;
    default:
      return NOT_PLAIN;
  }
  if (value === null) return null;
  if (depth >= MAX_PLAIN_DEPTH) return NOT_PLAIN;
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) return NOT_PLAIN;
    const copy: JsonValue[] = new Array<JsonValue>(value.length);
    for (let i = 0; i < value.length; i++) {
      const item = plainJson(value[i], depth + 1);
      if (item === NOT_PLAIN) return NOT_PLAIN;
      copy[i] = item;
    }
    return copy;
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function' || isBoxed(value)) return NOT_PLAIN;
  const copy: Record<string, JsonValue> = {};
  for (const key of Object.keys(value)) {
    const item = (value as Record<string, unknown>)[key];
    // JSON.stringify leaves these properties out.
    if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
    if (key === '__proto__') return NOT_PLAIN;
    const json = plainJson(item, depth + 1);
    if (json === NOT_PLAIN) return NOT_PLAIN;
    copy[key] = json;
  }
  return copy;
}

function isBoxed(value: object): boolean {
  return (
    value instanceof String ||
    value instanceof Number ||
    value instanceof Boolean ||
    value instanceof BigInt ||
    value instanceof Symbol
  );
}
