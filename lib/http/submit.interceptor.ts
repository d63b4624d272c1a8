import {
  type CallHandler,
  type ExecutionContext,
  HttpStatus,
  Inject,
  Injectable,
  type NestInterceptor,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { from, mergeMap, type Observable } from 'rxjs';
import { ASYNC_ENDPOINTS_OPTIONS } from '../async-endpoints.module-definition.js';
import { AsyncEndpointsService } from '../async-endpoints.service.js';
import { toJobDocument, type JobDocument, type JsonValue } from '../job/index.js';
import type { AsyncEndpointRequest, ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';
import { ASYNC_ENDPOINT_METADATA, isSubmission, type AsyncEndpointMetadata } from './async-endpoint.decorator.js';
import { captureHeaders } from './capture-headers.js';
import { readIdempotencyHeaders } from './idempotency.js';
import { JobLocations } from './job-locations.js';
import { problem, ProblemException } from './problem-details.js';

interface HttpRequest extends AsyncEndpointRequest {
  headers: Record<string, string | string[] | undefined>;
  params?: Record<string, string>;
  query?: Record<string, string | string[]>;
}

interface HttpResponse {
  status?(code: number): unknown;
  code?(code: number): unknown;
  setHeader?(name: string, value: string): void;
  header?(name: string, value: string): unknown;
}

/**
 * The second half of `@AsyncEndpoint`: after guards, pipes and the method's pre-validation ran,
 * stores the job and answers 202 with `Location`, `Retry-After` and the job document.
 */
@Injectable()
export class SubmitInterceptor implements NestInterceptor {
  constructor(
    private readonly reflector: Reflector,
    private readonly service: AsyncEndpointsService,
    private readonly locations: JobLocations,
    @Inject(ASYNC_ENDPOINTS_OPTIONS) private readonly options: ResolvedAsyncEndpointsOptions,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const endpoint = this.reflector.get<AsyncEndpointMetadata>(ASYNC_ENDPOINT_METADATA, context.getHandler());
    const http = context.switchToHttp();
    const request = http.getRequest<HttpRequest>();
    rejectNonJsonBody(request);
    // Checked before the method runs, so a malformed header never reaches pre-validation.
    const idempotency = readIdempotencyHeaders(request.headers);
    return next.handle().pipe(
      mergeMap((value) => {
        if (!isSubmission(value)) return from([value]);
        return from(this.store(endpoint.name, value.payload, request, http.getResponse<HttpResponse>(), idempotency));
      }),
    );
  }

  private async store(
    name: string,
    payload: unknown,
    request: HttpRequest,
    response: HttpResponse,
    idempotency: ReturnType<typeof readIdempotencyHeaders>,
  ): Promise<JobDocument> {
    const traceContext = pick(request.headers, ['traceparent', 'tracestate']);
    const { job } = await this.service.submitJob(name, toJson(payload), {
      ...idempotency,
      headers: captureHeaders(request.headers, this.options.http.captureHeaders),
      owner: this.options.jobOwner?.(request) ?? undefined,
      routeParams: { ...(request.params ?? {}) },
      queryParams: { ...(request.query ?? {}) },
      traceContext: Object.keys(traceContext).length > 0 ? traceContext : undefined,
    });
    const location = this.locations.of(job.id);
    const set = (header: string, value: string) =>
      response.setHeader ? response.setHeader(header, value) : response.header?.(header, value);
    if (location) set('Location', location);
    set('Retry-After', String(this.options.http.retryAfterSeconds));
    set('Cache-Control', 'no-store');
    return toJobDocument(job, location, this.options.http.exposeErrorDetails);
  }
}

const JSON_TYPE = /^application\/([\w.+-]+\+)?json\s*(;|$)/i;

/** A body on a JSON route must be JSON: 415, before a ValidationPipe can call it a 400. */
function rejectNonJsonBody(request: HttpRequest): void {
  const length = request.headers['content-length'];
  const hasBody = (length !== undefined && length !== '0') || request.headers['transfer-encoding'] !== undefined;
  const type = request.headers['content-type'];
  if (hasBody && (typeof type !== 'string' || !JSON_TYPE.test(type))) {
    throw new ProblemException(
      problem(
        HttpStatus.UNSUPPORTED_MEDIA_TYPE,
        `This endpoint accepts application/json bodies; got ${typeof type === 'string' ? type : 'no Content-Type'}.`,
      ),
    );
  }
}

function pick(headers: HttpRequest['headers'], names: string[]): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const name of names) {
    const value = headers[name];
    if (typeof value === 'string') picked[name] = value;
  }
  return picked;
}

/** Pipes may hand over class instances; the store keeps plain JSON. */
function toJson(payload: unknown): JsonValue {
  if (payload === undefined) return {};
  return JSON.parse(JSON.stringify(payload)) as JsonValue;
}
