import { HttpStatus } from '@nestjs/common';
import type { RouteMatcher } from './express-body-reader.js';
import { problem, type ProblemDetails, sendProblem } from './problem-details.js';

/** What the `onRoute` hook sees of a route (the fastify types stay out of the library's API). */
interface FastifyRouteOptions {
  method: string | string[];
  url: string;
  bodyLimit?: number;
  errorHandler?: FastifyErrorHandler;
}

type FastifyErrorHandler = (this: unknown, error: FastifyError, request: FastifyRequestLike, reply: unknown) => unknown;

interface FastifyRequestLike {
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

interface FastifyError extends Error {
  code?: string;
  statusCode?: number;
}

export interface FastifyInstanceLike {
  addHook(name: 'onRoute', hook: (route: FastifyRouteOptions) => void): unknown;
}

/**
 * On Fastify, the body is parsed before Nest sees the request, so the async endpoint routes get
 * `http.bodyLimitBytes` as their route body limit and a route error handler that answers the body
 * parser's errors (413, malformed JSON 400, 415) as problem+json, like on Express. Other errors go
 * on to the route's own handler or the app's.
 */
export function configureFastifyRoutes(instance: FastifyInstanceLike, matches: RouteMatcher, limitBytes: number): void {
  instance.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (!methods.some((method) => matches(method.toUpperCase(), route.url))) return;
    route.bodyLimit = limitBytes;
    const ownHandler = route.errorHandler;
    route.errorHandler = function asyncEndpointsBodyErrors(error, request, reply) {
      const body = bodyProblem(error, request, limitBytes);
      if (!body) {
        if (ownHandler) return ownHandler.call(this, error, request, reply);
        throw error;
      }
      body.instance = request.url.split('?')[0];
      sendProblem(reply, body);
    };
  });
}

function bodyProblem(error: FastifyError, request: FastifyRequestLike, limitBytes: number): ProblemDetails | null {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return problem(
        HttpStatus.PAYLOAD_TOO_LARGE,
        `The request body is larger than ${limitBytes} bytes, the limit set by http.bodyLimitBytes.`,
      );
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return problem(HttpStatus.BAD_REQUEST, 'The request body is not valid JSON.');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return problem(
        HttpStatus.BAD_REQUEST,
        'The request body is empty but its Content-Type is application/json: send a JSON body, or no Content-Type.',
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return problem(
        HttpStatus.UNSUPPORTED_MEDIA_TYPE,
        `This endpoint accepts application/json bodies; got ${String(request.headers['content-type'] ?? 'no Content-Type')}.`,
      );
    default:
      // Any other client error of the body parser (a Content-Length that does not match the body).
      if (error.code?.startsWith('FST_ERR_CTP_') && error.statusCode !== undefined && error.statusCode < 500) {
        return problem(error.statusCode, error.message);
      }
      return null;
  }
}
