import type { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Readable, Transform } from 'node:stream';
import { HttpStatus } from '@nestjs/common';
import { jsonInputProblem } from '../job/json-input.js';
import { decoderOf, pathOf, type RouteMatcher, undecodableJobId } from './express-body-reader.js';
import { problem, PROBLEM_CONTENT_TYPE, type ProblemDetails, sendProblem } from './problem-details.js';

type Hook = (...args: never[]) => unknown;

/** What the `onRoute` hook sees of a route (the fastify types stay out of the library's API). */
interface FastifyRouteOptions {
  method: string | string[];
  url: string;
  bodyLimit?: number;
  errorHandler?: FastifyErrorHandler;
  preParsing?: Hook | Hook[];
  preValidation?: Hook | Hook[];
}

type FastifyErrorHandler = (this: unknown, error: FastifyError, request: FastifyRequestLike, reply: unknown) => unknown;

interface FastifyRequestLike {
  url: string;
  headers: Record<string, string | string[] | undefined>;
  raw: IncomingMessage;
  body?: unknown;
}

interface FastifyError extends Error {
  code?: string;
  statusCode?: number;
}

export interface FastifyInstanceLike {
  addHook(name: 'onRoute', hook: (route: FastifyRouteOptions) => void): unknown;
  server: EventEmitter;
}

export interface FastifyLimits {
  bodyLimitBytes: number;
  maxJsonDepth: number;
}

/** A body the library refuses, with its answer; the route's error handler sends it. */
class BodyRefused extends Error {
  readonly statusCode: number;

  constructor(readonly problemDetails: ProblemDetails) {
    super(problemDetails.detail);
    this.statusCode = problemDetails.status;
  }
}

/** Errors of the decoders the library put in front of a body, with the coding they decoded. */
const decodingErrors = new WeakMap<Error, string>();

/**
 * On Fastify, the body is parsed before Nest sees the request, so the async endpoint routes get
 * `http.bodyLimitBytes` as their route body limit, a decoder for gzip, deflate and br bodies (Fastify
 * has none), a check of the parsed body against `http.maxJsonDepth` and `__proto__` keys before Nest's
 * pipes walk it, and a route error handler that answers all of these and the body parser's errors
 * (413, malformed JSON 400, 415) as problem+json, like on Express. Other errors go on to the route's
 * own handler or the app's. `DELETE <jobsPath>/:id` ignores a body, as on Express.
 */
export function configureFastifyRoutes(
  instance: FastifyInstanceLike,
  endpoints: RouteMatcher,
  statusRoutes: RouteMatcher,
  limits: FastifyLimits,
): void {
  instance.addHook('onRoute', (route) => {
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).map((method) => method.toUpperCase());
    if (methods.some((method) => endpoints(method, route.url))) configureEndpoint(route, limits);
    else if (methods.includes('DELETE') && statusRoutes('DELETE', route.url)) prepend(route, 'preParsing', dropBody);
  });
  answerUndecodableJobIds(instance.server, statusRoutes);
}

function configureEndpoint(route: FastifyRouteOptions, { bodyLimitBytes, maxJsonDepth }: FastifyLimits): void {
  route.bodyLimit = bodyLimitBytes;
  prepend(route, 'preParsing', decoderFor(bodyLimitBytes));
  prepend(
    route,
    'preValidation',
    function checkJsonInput(request: FastifyRequestLike, _reply: unknown, done: (error?: Error) => void) {
      const refused = jsonInputProblem(request.body, maxJsonDepth);
      done(refused ? new BodyRefused(problem(HttpStatus.BAD_REQUEST, refused.detail)) : undefined);
    },
  );
  const ownHandler = route.errorHandler;
  route.errorHandler = function asyncEndpointsBodyErrors(error, request, reply) {
    const body = bodyProblem(error, request, bodyLimitBytes);
    if (!body) {
      if (ownHandler) return ownHandler.call(this, error, request, reply);
      throw error;
    }
    body.instance = pathOf(request);
    sendProblem(reply, body);
  };
}

/** The library's hook runs first: before the app's own hooks of the route read the body. */
function prepend(route: FastifyRouteOptions, name: 'preParsing' | 'preValidation', hook: Hook): void {
  const own = route[name];
  route[name] = [hook, ...(own === undefined ? [] : Array.isArray(own) ? own : [own])];
}

/** Decodes a gzip, deflate or br body; Fastify's body limit then applies to the decoded bytes. */
export function decoderFor(limitBytes: number) {
  return function decodeBody(
    request: FastifyRequestLike,
    _reply: unknown,
    payload: Readable,
    done: (error: Error | null, payload?: Readable) => void,
  ): void {
    const header = request.headers['content-encoding'];
    if (header === undefined || !hasBody(request.headers)) return done(null, payload);
    const encoding = String(header).trim().toLowerCase();
    const decoder = decoderOf(encoding);
    if (decoder === undefined) {
      return done(
        new BodyRefused(
          problem(
            HttpStatus.UNSUPPORTED_MEDIA_TYPE,
            `Content-Encoding '${encoding.slice(0, 64)}' is not supported; send identity, gzip, deflate or br.`,
          ),
        ),
      );
    }
    if (decoder === null) return done(null, payload);
    done(null, inflated(payload, decoder(), encoding, limitBytes));
  };
}

/**
 * The body inflated, as Fastify's parser reads it: a Transform that counts the decoded bytes as they
 * are read (a 'data' listener here would make the stream flow before the parser listens, and lose what
 * flowed while a later hook of the route still ran), and stops inflating past the limit.
 */
function inflated(payload: Readable, inflate: Transform, encoding: string, limitBytes: number): Readable {
  let decodedBytes = 0;
  const decoded = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      decodedBytes += chunk.length;
      callback(null, chunk);
      // Fastify answers 413 on this chunk; stop inflating the rest (a compression bomb) too.
      if (decodedBytes > limitBytes) {
        payload.unpipe(inflate);
        payload.resume();
        inflate.unpipe(this);
        inflate.destroy();
        this.push(null);
      }
    },
  }) as Transform & { receivedEncodedLength: number };
  // Fastify compares the bytes received, not the decoded ones, with the Content-Length.
  decoded.receivedEncodedLength = 0;
  payload.on('data', (chunk: Buffer) => (decoded.receivedEncodedLength += chunk.length));
  inflate.on('error', (error: Error) => {
    decodingErrors.set(error, encoding);
    decoded.destroy(error);
  });
  // Fastify stops listening once it has answered (a 413 on the declared length, say): a decoder error
  // after that must not become an uncaught exception.
  decoded.on('error', () => undefined);
  payload.pipe(inflate).pipe(decoded);
  return decoded;
}

function hasBody(headers: FastifyRequestLike['headers']): boolean {
  const length = headers['content-length'];
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * The status routes take no body: one sent all the same is read and dropped, as on Express, so that
 * Fastify's parser (whose errors are not problem+json) never sees it.
 */
function dropBody(
  request: FastifyRequestLike,
  _reply: unknown,
  payload: Readable,
  done: (error: null, payload: Readable) => void,
) {
  const { headers } = request.raw;
  if (headers['content-type'] !== undefined || hasBody(headers)) {
    delete headers['content-type'];
    delete headers['content-length'];
    delete headers['transfer-encoding'];
    payload.resume();
  }
  done(null, payload);
}

/** Fastify's default `maxParamLength`: a longer parameter is refused before any hook runs. */
const FASTIFY_MAX_PARAM_LENGTH = 100;

/**
 * Fastify answers a URL that is not valid percent-encoding, or a parameter longer than its
 * `maxParamLength`, itself before any route or hook runs: the status routes' ids (UUIDs, 36
 * characters) get the library's 400 problem ahead of it, as on Express.
 */
function answerUndecodableJobIds(server: EventEmitter, statusRoutes: RouteMatcher): void {
  const [fastifyHandler] = server.listeners('request') as ((
    request: IncomingMessage,
    response: ServerResponse,
  ) => void)[];
  if (!fastifyHandler) return;
  server.removeListener('request', fastifyHandler);
  server.on(
    'request',
    function asyncEndpointsJobIds(this: unknown, request: IncomingMessage, response: ServerResponse) {
      const url = request.url ?? '/';
      if (url.length > FASTIFY_MAX_PARAM_LENGTH || url.includes('%')) {
        const path = pathOf(request);
        const refused = statusRoutes(request.method ?? 'GET', path)
          ? (undecodableJobId(path) ?? overlongJobId(path))
          : null;
        if (refused) {
          request.resume();
          response.writeHead(refused.status, { 'Content-Type': PROBLEM_CONTENT_TYPE, 'Cache-Control': 'no-store' });
          response.end(JSON.stringify(refused));
          return;
        }
      }
      fastifyHandler.call(this, request, response);
    },
  );
}

function overlongJobId(path: string): ProblemDetails | null {
  const id = path.slice(path.lastIndexOf('/') + 1);
  if (id.length <= FASTIFY_MAX_PARAM_LENGTH) return null;
  return problem(HttpStatus.BAD_REQUEST, `'${id.slice(0, 64)}' is not a job id; job ids are UUIDs.`, {
    instance: path,
  });
}

function bodyProblem(error: FastifyError, request: FastifyRequestLike, limitBytes: number): ProblemDetails | null {
  if (error instanceof BodyRefused) return { ...error.problemDetails };
  const encoding = decodingErrors.get(error);
  if (encoding !== undefined) {
    return problem(
      HttpStatus.BAD_REQUEST,
      `The request body cannot be decoded as Content-Encoding ${encoding}: ${error.message}`,
    );
  }
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
