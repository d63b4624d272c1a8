import {
  type ArgumentsHost,
  Catch,
  type ExceptionFilter,
  HttpException,
  HttpStatus,
  Inject,
  Optional,
} from '@nestjs/common';
import { ASYNC_ENDPOINTS_OPTIONS } from '../async-endpoints.module-definition.js';
import { STORE_FULL_DETAIL } from '../errors/messages.js';
import { StoreUnavailableError } from '../errors/store-unavailable.error.js';
import {
  IdempotencyConflictError,
  InvalidPayloadError,
  QueueFullError,
  StoreFullError,
} from '../errors/submit.errors.js';
import { libraryLogger } from '../observability/library-logger.js';
import type { ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';
import { problem, ProblemException, sendProblem, type ProblemDetails } from './problem-details.js';

/**
 * Turns every error on the library's routes (guards, pipes, pre-validation, the store) into
 * problem+json. Unexpected errors become a generic 500 and are logged; no stack reaches the client.
 */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly logger = libraryLogger();

  private readonly retryAfterSeconds: number;

  constructor(@Optional() @Inject(ASYNC_ENDPOINTS_OPTIONS) options?: ResolvedAsyncEndpointsOptions) {
    this.retryAfterSeconds = Math.max(1, options?.http.retryAfterSeconds ?? 1);
  }

  catch(exception: unknown, host: ArgumentsHost): void {
    const { body, headers } = this.toProblem(exception);
    const http = host.switchToHttp();
    const request = http.getRequest<{ url?: string; originalUrl?: string }>();
    body.instance ??= request.originalUrl ?? request.url;
    sendProblem(http.getResponse(), body, headers);
  }

  toProblem(exception: unknown): { body: ProblemDetails; headers: Record<string, string> } {
    if (exception instanceof ProblemException) {
      return { body: { ...exception.problemDetails }, headers: exception.headers };
    }
    if (exception instanceof QueueFullError) {
      return {
        body: problem(HttpStatus.TOO_MANY_REQUESTS, exception.message),
        headers: { 'Retry-After': String(this.retryAfterSeconds) },
      };
    }
    if (exception instanceof StoreFullError) {
      return {
        // The reason (counts, options) is the operator's: the store logs it once per outage.
        body: problem(HttpStatus.SERVICE_UNAVAILABLE, STORE_FULL_DETAIL),
        headers: { 'Retry-After': String(this.retryAfterSeconds) },
      };
    }
    if (exception instanceof InvalidPayloadError) {
      return { body: problem(HttpStatus.BAD_REQUEST, exception.message), headers: {} };
    }
    if (exception instanceof IdempotencyConflictError) {
      return { body: problem(HttpStatus.UNPROCESSABLE_ENTITY, exception.message), headers: {} };
    }
    if (exception instanceof StoreUnavailableError) {
      if (!exception.logged) this.logger.warn(exception.message);
      return {
        body: problem(
          HttpStatus.SERVICE_UNAVAILABLE,
          exception.detail ??
            (exception.outcomeUnknown
              ? 'The job store did not answer in time: the request may or may not have taken effect. Retry later; ' +
                'a submit retried with the same Idempotency-Key cannot create a second job.'
              : 'The job store is unavailable; nothing was changed. Retry later.'),
        ),
        headers: { 'Retry-After': String(this.retryAfterSeconds) },
      };
    }
    if (exception instanceof HttpException) {
      return { body: fromHttpException(exception), headers: {} };
    }
    this.logger.error(
      // The message may carry request text: the library logger escapes it, and the stack.
      `Unexpected error on an async endpoint route: ${exception instanceof Error ? exception.message : String(exception)}`,
      exception instanceof Error ? exception.stack : undefined,
    );
    return { body: problem(HttpStatus.INTERNAL_SERVER_ERROR, 'An unexpected error occurred.'), headers: {} };
  }
}

function fromHttpException(exception: HttpException): ProblemDetails {
  const status = exception.getStatus();
  const response = exception.getResponse();
  if (typeof response === 'string') return problem(status, response);
  const body = response as { message?: unknown; error?: unknown };
  if (Array.isArray(body.message)) {
    return problem(status, 'The request is invalid; see errors.', { errors: body.message.map(String) });
  }
  const detail = typeof body.message === 'string' ? body.message : exception.message;
  return problem(status, detail);
}
