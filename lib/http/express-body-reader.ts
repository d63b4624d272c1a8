import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import bodyParser from 'body-parser';
import { jsonInputProblem } from '../job/json-input.js';
import { JSON_MEDIA_TYPE } from './json-media-type.js';
import { problem, type ProblemDetails, sendProblem } from './problem-details.js';

type Next = (error?: unknown) => void;

type BodyRequest = IncomingMessage & { body?: unknown };

type Parser = (request: BodyRequest, response: ServerResponse, next: Next) => void;

export interface RouteMatcher {
  (method: string, path: string): boolean;
}

/**
 * The content codings a body may come in: those body-parser inflates (but zstd, which it inflates
 * only on Node 22 and later), and x-gzip, gzip's old name.
 */
const DECODERS = new Map<string, (() => Transform) | null>([
  ['identity', null],
  ['gzip', createGunzip],
  ['x-gzip', createGunzip],
  ['deflate', createInflate],
  ['br', createBrotliDecompress],
]);

/**
 * The decoder of a content coding: null for identity, undefined for one not supported. A Map, so that a
 * client's `Content-Encoding: constructor` finds no inherited member (it crashed the process once).
 */
export function decoderOf(encoding: string): (() => Transform) | null | undefined {
  return DECODERS.get(encoding);
}

/**
 * Reads the bodies of async endpoint routes on Express with Express's own body parser (body-parser),
 * before the app's parser, so that those routes get the `http.bodyLimitBytes` limit (on the decoded
 * body) and problem+json answers for oversized (413), malformed or undecodable (400) bodies and
 * unknown content codings or charsets (415). JSON bodies are parsed, and refused (400) when nested
 * deeper than `http.maxJsonDepth` or holding a `__proto__` key; any other body is read and dropped
 * (the route answers it 415 after its guards). Other routes pass through untouched.
 */
export function expressBodyReader(matches: RouteMatcher, limitBytes: number, maxJsonDepth: number) {
  // Any JSON value, as JSON.parse takes it (not only objects and arrays): the route's pipes decide.
  const json = bodyParser.json({ limit: limitBytes, strict: false, type: () => true }) as Parser;
  const drop = bodyDropper(limitBytes);
  return function asyncEndpointsBodyReader(request: BodyRequest, response: ServerResponse, next: Next): void {
    const path = pathOf(request);
    if (!matches(request.method ?? 'GET', path)) return next();
    const type = request.headers['content-type'];
    if (typeof type !== 'string' || !JSON_MEDIA_TYPE.test(type)) return drop(request, response, path, next);
    read(json, request, response, path, limitBytes, next, () => {
      // A JSON request without any body, as one with an empty body: {}.
      if (request.body === undefined) request.body = {};
      const refused = jsonInputProblem(request.body, maxJsonDepth);
      if (refused) return sendProblem(response, problem(400, refused.detail, { instance: path }));
      next();
    });
  };
}

/**
 * The status routes (`GET`, `HEAD` and `DELETE <jobsPath>/:id`) take no body: one sent all the same is
 * read and dropped here, so that the app's body parser, whose errors are not problem+json, never sees
 * it. An id that is not valid percent-encoding is answered here too (400 problem): the router's own
 * decoding would fail with a plain error.
 */
export function expressStatusRouteReader(matches: RouteMatcher, limitBytes: number) {
  const drop = bodyDropper(limitBytes);
  return function asyncEndpointsStatusRoutes(request: BodyRequest, response: ServerResponse, next: Next): void {
    const path = pathOf(request);
    if (!matches(request.method ?? 'GET', path)) return next();
    const notAnId = undecodableJobId(path);
    if (notAnId) {
      request.resume();
      return sendProblem(response, notAnId);
    }
    drop(request, response, path, next);
  };
}

/** Reads a body of any type (decoded, at most `limitBytes`) to its end, and forgets it. */
function bodyDropper(limitBytes: number) {
  const raw = bodyParser.raw({ limit: limitBytes, type: () => true }) as Parser;
  return (request: BodyRequest, response: ServerResponse, path: string, next: Next): void =>
    read(raw, request, response, path, limitBytes, next, () => {
      request.body = undefined;
      next();
    });
}

/**
 * Runs a body-parser middleware on the request and calls `done` once the body is read; answers the
 * request itself, as problem+json, when the body cannot be read. The app's parser, after this one,
 * skips the request: its body has been read.
 */
function read(
  parser: Parser,
  request: BodyRequest,
  response: ServerResponse,
  path: string,
  limitBytes: number,
  next: Next,
  done: () => void,
): void {
  const declared = Number(request.headers['content-length'] ?? NaN);
  // No body at all, whatever its headers say it would be encoded with: nothing to decode or refuse. The
  // stream is still read to its end: the app's own parser skips a request only once it has ended.
  if (request.headers['transfer-encoding'] === undefined && !(declared > 0)) {
    if (request.readableEnded) return done();
    request.once('end', done);
    request.resume();
    return;
  }
  // Declared too large: answered at once, and the connection closed rather than the body drained
  // (body-parser reads a refused body to its end before it answers).
  if (declared > limitBytes) {
    request.resume();
    return sendProblem(response, { ...tooLarge(limitBytes), instance: path }, { Connection: 'close' });
  }
  const header = request.headers['content-encoding'];
  const encoding = header === undefined ? 'identity' : header.trim().toLowerCase();
  if (decoderOf(encoding) === undefined) {
    request.resume();
    return sendProblem(
      response,
      problem(
        415,
        `Content-Encoding '${encoding.slice(0, 64)}' is not supported; send identity, gzip, deflate or br.`,
        {
          instance: path,
        },
      ),
    );
  }
  // body-parser knows the obsolete alias x-gzip by its name, gzip (RFC 9110, section 8.4.1.3).
  if (encoding === 'x-gzip') request.headers['content-encoding'] = 'gzip';
  parser(request, response, (error?: unknown) => {
    if (error === undefined) return done();
    const refused = bodyProblem(error, encoding, limitBytes);
    if (refused === null) return next(error);
    sendProblem(response, { ...refused, instance: path }, refused.status === 413 ? { Connection: 'close' } : {});
  });
}

function tooLarge(limitBytes: number): ProblemDetails {
  return problem(413, `The request body is larger than ${limitBytes} bytes, the limit set by http.bodyLimitBytes.`);
}

/** The problem for a body-parser error; null for one that is not the client's doing (a 5xx). */
function bodyProblem(error: unknown, encoding: string, limitBytes: number): ProblemDetails | null {
  const { status, type, message, charset } = error as {
    status?: number;
    type?: string;
    message: string;
    charset?: string;
  };
  switch (type) {
    case 'entity.too.large':
      return tooLarge(limitBytes);
    case 'entity.parse.failed':
      return problem(400, `The request body is not valid JSON: ${message}`);
    case 'charset.unsupported':
      return problem(415, `The charset '${String(charset).slice(0, 64)}' is not supported; send JSON in UTF-8.`);
  }
  if (status === undefined || status >= 500) return null;
  // body-parser hands over the decoder's own error, without a type, when the body does not inflate.
  if (type === undefined && encoding !== 'identity') {
    return problem(400, `The request body cannot be decoded as Content-Encoding ${encoding}: ${message}`);
  }
  return problem(status, `The request body cannot be read: ${message}.`);
}

/** The 400 problem for a status route path whose id is not valid percent-encoding; null for a valid one. */
export function undecodableJobId(path: string): ProblemDetails | null {
  const id = path.slice(path.lastIndexOf('/') + 1);
  try {
    decodeURIComponent(id);
    return null;
  } catch {
    return problem(400, `'${id.slice(0, 64)}' is not a job id; job ids are UUIDs.`, { instance: path });
  }
}

/** The request's path, without the query string. */
export function pathOf(request: { url?: string }): string {
  const url = request.url ?? '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/** How the app's router matches paths: Express's `case sensitive routing` and `strict routing`. */
export interface RoutingOptions {
  caseSensitive: boolean;
  /** A trailing slash makes another path (otherwise `/a/` is `/a`). */
  strict: boolean;
}

/**
 * A matcher for Nest route paths (`:param`, `*splat`, `{*splat}`, `{/:optional}`) that matches
 * request paths as the app's router does.
 */
export function compileRoutes(routes: { method: string; path: string }[], routing: RoutingOptions): RouteMatcher {
  const compiled = routes.map((route) => ({ method: route.method, pattern: toRegExp(route.path, routing) }));
  return (method, path) =>
    compiled.some((route) => (route.method === 'ALL' || route.method === method) && route.pattern.test(path));
}

function toRegExp(path: string, { caseSensitive, strict }: RoutingOptions): RegExp {
  let source = '';
  for (let i = 0; i < path.length; i++) {
    const char = path[i]!;
    if (char === '{') source += '(?:';
    else if (char === '}') source += ')?';
    else if (char === ':' || char === '*') {
      // Parameter names do not matter for matching: skip them.
      while (i + 1 < path.length && /\w/.test(path[i + 1]!)) i++;
      source += char === ':' ? '[^/]+' : '.*';
    } else source += char.replace(/[.+?^$()|[\]\\]/g, '\\$&');
  }
  return new RegExp(strict ? `^${source}$` : `^${source.replace(/\/$/, '')}/?$`, caseSensitive ? '' : 'i');
}
