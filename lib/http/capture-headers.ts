import type { CaptureHeadersOptions } from '../options/async-endpoints-options.js';

/** Credentials: never stored with a job unless named in `captureHeaders.include`. */
export const SENSITIVE_HEADERS: readonly string[] = [
  'authorization',
  'cookie',
  'proxy-authorization',
  'x-api-key',
  'set-cookie',
];

/** Hop-by-hop and transport headers that mean nothing to a handler running later. */
const TRANSPORT_HEADERS = ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'content-length', 'te', 'trailer'];

/** Left out without an include list: credentials and transport headers. */
const LEFT_OUT_BY_DEFAULT = new Set([...SENSITIVE_HEADERS, ...TRANSPORT_HEADERS]);

type RequestHeaders = Record<string, string | string[] | undefined>;

/** The request headers to store with a job, names in lower case, repeated values joined by ", ". */
export function captureHeaders(headers: RequestHeaders, options: CaptureHeadersOptions): Record<string, string> {
  return headerCapture(options)(headers);
}

/** `captureHeaders` with its options compiled once, for every request of an app. */
export function headerCapture(options: CaptureHeadersOptions): (headers: RequestHeaders) => Record<string, string> {
  const include = options.include && new Set(options.include.map((name) => name.toLowerCase()));
  const exclude = new Set((options.exclude ?? []).map((name) => name.toLowerCase()));
  const keep = include
    ? (name: string) => include.has(name) && !exclude.has(name)
    : (name: string) => !LEFT_OUT_BY_DEFAULT.has(name) && !exclude.has(name);
  return (headers) => {
    const captured: Record<string, string> = {};
    for (const rawName of Object.keys(headers)) {
      const value = headers[rawName];
      if (value === undefined) continue;
      const name = rawName.toLowerCase();
      if (!keep(name)) continue;
      captured[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    return captured;
  };
}
