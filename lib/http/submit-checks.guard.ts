import { type CanActivate, type ExecutionContext, HttpStatus } from '@nestjs/common';
import { readIdempotencyHeaders, type IdempotencyHeaders } from './idempotency.js';
import type { HttpRequest } from './job-submitter.js';
import { JSON_MEDIA_TYPE } from './json-media-type.js';
import { problem, ProblemException } from './problem-details.js';

/** The idempotency headers of the requests SubmitChecks let through, as it read them. */
const checked = new WeakMap<object, IdempotencyHeaders>();

/** The idempotency headers SubmitChecks read from this request, before the pipes and the method ran. */
export function checkedIdempotencyHeaders(request: object): IdempotencyHeaders | undefined {
  return checked.get(request);
}

/**
 * The library's checks on a submit, which run as the route's last guard: after the app's guards (a
 * request they refuse gets their answer, not these) and before the pipes (a body that is not JSON gets
 * 415, not a validation 400; a malformed idempotency header never reaches the method).
 */
export class SubmitChecks implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    // The HTTP request, without the wrapper object switchToHttp() builds on every call.
    const request = context.getArgByIndex<HttpRequest>(0);
    rejectNonJsonBody(request);
    checked.set(request, readIdempotencyHeaders(request.headers));
    return true;
  }
}

/** A body on a JSON route must be JSON: 415, before a ValidationPipe can call it a 400. */
function rejectNonJsonBody(request: HttpRequest): void {
  const length = request.headers['content-length'];
  const hasBody = (length !== undefined && length !== '0') || request.headers['transfer-encoding'] !== undefined;
  const type = request.headers['content-type'];
  if (hasBody && (typeof type !== 'string' || !JSON_MEDIA_TYPE.test(type))) {
    throw new ProblemException(
      problem(
        HttpStatus.UNSUPPORTED_MEDIA_TYPE,
        `This endpoint accepts application/json bodies; got ${typeof type === 'string' ? type : 'no Content-Type'}.`,
      ),
    );
  }
}
