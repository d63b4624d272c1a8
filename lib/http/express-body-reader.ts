import type { IncomingMessage, ServerResponse } from 'node:http';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { Readable } from 'node:stream';
import { jsonInputProblem } from '../job/json-input.js';
import { problem, type ProblemDetails, sendProblem } from './problem-details.js';

type Next = (error?: unknown) => void;

type BodyRequest = IncomingMessage & { body?: unknown; _body?: boolean };

export interface RouteMatcher {
  (method: string, path: string): boolean;
}

const JSON_TYPE = /^application\/([\w.+-]+\+)?json\s*(;|$)/i;

/** The content codings a body may come in (those Express's own body parser inflates too). */
const DECODERS = new Map<string, (() => NodeJS.ReadWriteStream) | null>([
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
export function decoderOf(encoding: string): (() => NodeJS.ReadWriteStream) | null | undefined {
  return DECODERS.get(encoding);
}

/**
 * Reads the bodies of async endpoint routes on Express before the app's own body parser, so that
 * those routes get the `http.bodyLimitBytes` limit (on the decoded body) and problem+json answers for
 * oversized (413), malformed or undecodable (400) bodies and unknown content codings (415). JSON bodies
 * are parsed, and refused (400) when nested deeper than `http.maxJsonDepth` or holding a `__proto__`
 * key; any other body is read and dropped (the route answers it 415 after its guards). Other routes
 * pass through untouched.
 */
export function expressBodyReader(matches: RouteMatcher, limitBytes: number, maxJsonDepth: number) {
  return function asyncEndpointsBodyReader(request: BodyRequest, response: ServerResponse, next: Next): void {
    const path = pathOf(request);
    if (request._body || !matches(request.method ?? 'GET', path)) return next();
    const type = request.headers['content-type'];
    const json = typeof type === 'string' && JSON_TYPE.test(type);
    readBody(request, response, path, limitBytes, next, (text) => {
      if (!json) return true;
      let body: unknown;
      try {
        // JSON.parse does not recurse: any depth is parsed, then checked before anything else reads it.
        body = text.length === 0 ? {} : JSON.parse(text);
      } catch (error) {
        sendProblem(response, problem(400, `The request body is not valid JSON: ${(error as Error).message}`, { instance: path }));
        return false;
      }
      const refused = jsonInputProblem(body, maxJsonDepth);
      if (refused) {
        sendProblem(response, problem(400, refused.detail, { instance: path }));
        return false;
      }
      request.body = body;
      return true;
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
  return function asyncEndpointsStatusRoutes(request: BodyRequest, response: ServerResponse, next: Next): void {
    if (request._body) return next();
    const path = pathOf(request);
    if (!matches(request.method ?? 'GET', path)) return next();
    const notAnId = undecodableJobId(path);
    if (notAnId) {
      request.resume();
      return sendProblem(response, notAnId);
    }
    readBody(request, response, path, limitBytes, next, () => true);
  };
}

/**
 * Reads the whole body (decoded, at most `limitBytes`), hands it to `accept`, marks it read and calls
 * next() when `accept` says so; answers the request itself when the body cannot be read.
 */
function readBody(
  request: BodyRequest,
  response: ServerResponse,
  path: string,
  limitBytes: number,
  next: Next,
  accept: (text: string) => boolean,
): void {
  const declared = Number(request.headers['content-length'] ?? NaN);
  // No body at all (whatever its headers say it would be encoded with): nothing to decode. The stream
  // is still read to its end: the app's body parser skips a request only when it has ended.
  if (request.headers['transfer-encoding'] === undefined && !(declared > 0)) {
    if (!accept('')) return;
    request._body = true;
    if (request.readableEnded) return next();
    request.once('end', () => next());
    request.resume();
    return;
  }
  const encoding = String(request.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  const decoder = decoderOf(encoding);
  if (decoder === undefined) {
    request.resume();
    return sendProblem(
      response,
      problem(415, `Content-Encoding '${encoding.slice(0, 64)}' is not supported; send identity, gzip, deflate or br.`, {
        instance: path,
      }),
    );
  }
  if (declared > limitBytes) {
    request.resume();
    return tooLarge(response, limitBytes, path);
  }
  const body: Readable | NodeJS.ReadWriteStream = decoder ? request.pipe(decoder()) : request;
  const chunks: Buffer[] = [];
  let received = 0;
  let failed = false;
  const fail = (answer: () => void) => {
    if (failed) return;
    failed = true;
    request.unpipe();
    request.resume();
    answer();
  };
  body.on('data', (chunk: Buffer) => {
    if (failed) return;
    received += chunk.length;
    if (received > limitBytes) return fail(() => tooLarge(response, limitBytes, path));
    chunks.push(chunk);
  });
  if (decoder) {
    body.on('error', (error: Error) =>
      fail(() =>
        sendProblem(
          response,
          problem(400, `The request body cannot be decoded as Content-Encoding ${encoding}: ${error.message}`, { instance: path }),
        ),
      ),
    );
  }
  request.on('error', (error) => fail(() => next(error)));
  body.on('end', () => {
    if (failed) return;
    // Most bodies come in one chunk: decoded as it is, not copied into a new buffer first.
    const text = chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks, received).toString('utf8');
    if (!accept(text)) return;
    request._body = true;
    next();
  });
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

function tooLarge(response: ServerResponse, limitBytes: number, path: string): void {
  sendProblem(
    response,
    problem(413, `The request body is larger than ${limitBytes} bytes, the limit set by http.bodyLimitBytes.`, {
      instance: path,
    }),
    { Connection: 'close' },
  );
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
