import type { IncomingMessage, ServerResponse } from 'node:http';
import { problem, sendProblem } from './problem-details.js';

type Next = (error?: unknown) => void;

export interface RouteMatcher {
  (method: string, path: string): boolean;
}

const JSON_TYPE = /^application\/([\w.+-]+\+)?json\s*(;|$)/i;

/**
 * Reads JSON bodies of async endpoint routes on Express before the app's own body parser, so that
 * those routes get the `http.bodyLimitBytes` limit and problem+json answers for oversized (413) and
 * malformed (400) bodies. Other routes pass through untouched.
 */
export function expressBodyReader(matches: RouteMatcher, limitBytes: number) {
  return function asyncEndpointsBodyReader(request: IncomingMessage & { body?: unknown; _body?: boolean }, response: ServerResponse, next: Next): void {
    const path = (request.url ?? '/').split('?')[0]!;
    if (request._body || !matches(request.method ?? 'GET', path)) return next();
    const type = request.headers['content-type'];
    const encoding = (request.headers['content-encoding'] ?? 'identity').toLowerCase();
    // Non-JSON bodies are left to the route's 415 check; compressed ones to the app's parser.
    if (typeof type !== 'string' || !JSON_TYPE.test(type) || encoding !== 'identity') return next();
    const declared = Number(request.headers['content-length'] ?? NaN);
    if (declared > limitBytes) {
      request.resume();
      return tooLarge(response, limitBytes, path);
    }
    const chunks: Buffer[] = [];
    let received = 0;
    let failed = false;
    request.on('data', (chunk: Buffer) => {
      if (failed) return;
      received += chunk.length;
      if (received > limitBytes) {
        failed = true;
        tooLarge(response, limitBytes, path);
        return;
      }
      chunks.push(chunk);
    });
    request.on('error', (error) => {
      if (!failed) next(error);
      failed = true;
    });
    request.on('end', () => {
      if (failed) return;
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        request.body = text.length === 0 ? {} : JSON.parse(text);
        request._body = true;
      } catch (error) {
        return sendProblem(
          response,
          problem(400, `The request body is not valid JSON: ${(error as Error).message}`, { instance: path }),
        );
      }
      next();
    });
  };
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

/** A matcher for Nest route paths (`:param`, `*splat`, `{*splat}`, `{/:optional}`). */
export function compileRoutes(routes: { method: string; path: string }[]): RouteMatcher {
  const compiled = routes.map((route) => ({ method: route.method, pattern: toRegExp(route.path) }));
  return (method, path) =>
    compiled.some((route) => (route.method === 'ALL' || route.method === method) && route.pattern.test(path));
}

function toRegExp(path: string): RegExp {
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
  return new RegExp(`^${source.replace(/\/$/, '')}/?$`);
}
