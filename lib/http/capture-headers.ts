import type { CaptureHeadersOptions, CaptureQueryParamsOptions } from '../options/async-endpoints-options.js';

/** Credentials: never stored with a job unless named in `captureHeaders.include`. */
export const SENSITIVE_HEADERS: readonly string[] = [
  'authorization',
  'cookie',
  'proxy-authorization',
  'x-api-key',
  'set-cookie',
];

/**
 * Header and query parameter names that look like credentials (case-insensitive, anywhere in the name):
 * not stored unless named in an include list. Broad on purpose: a harmless name it catches
 * (`idempotency-key`, `keyword`) costs an include entry; a credential it missed would sit in the store.
 */
export const CREDENTIAL_NAME_PATTERN =
  /auth|token|secret|key|cookie|session|jwt|assertion|signature|credential|pass|pwd|cert|dpop|oidc|principal|(?:^|[-_.])(?:sig|code)(?:$|[-_.])/i;

/** Hop-by-hop and transport headers that mean nothing to a handler running later. */
const TRANSPORT_HEADERS = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'te',
  'trailer',
]);

type RequestHeaders = Record<string, string | string[] | undefined>;

/** Whether a name is kept: named by `include` when there is one, else not credential-like; never excluded. */
function nameFilter(options: CaptureHeadersOptions | CaptureQueryParamsOptions, leftOut: (name: string) => boolean) {
  const include = options.include && new Set(options.include.map((name) => name.toLowerCase()));
  const exclude = new Set((options.exclude ?? []).map((name) => name.toLowerCase()));
  return include
    ? (name: string) => include.has(name) && !exclude.has(name)
    : (name: string) => !leftOut(name) && !exclude.has(name);
}

const isLeftOutHeader = (name: string) =>
  TRANSPORT_HEADERS.has(name) || SENSITIVE_HEADERS.includes(name) || CREDENTIAL_NAME_PATTERN.test(name);

/** The request headers to store with a job, names in lower case, repeated values joined by ", ". */
export function captureHeaders(headers: RequestHeaders, options: CaptureHeadersOptions): Record<string, string> {
  return headerCapture(options)(headers);
}

/** `captureHeaders` with its options compiled once, for every request of an app. */
export function headerCapture(options: CaptureHeadersOptions): (headers: RequestHeaders) => Record<string, string> {
  const keep = nameFilter(options, isLeftOutHeader);
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

/**
 * The query parameters to store with a job (`ctx.queryParams`), names as sent (query names are
 * case-sensitive; the filter compares them in lower case). Credential-like names are left out unless
 * included. Only string and string-array values are kept, as `queryParams` is typed: the nested objects
 * of an extended query parser (`?filter[api_key]=…`) would carry names the filter never saw.
 */
export function queryParamCapture(
  options: CaptureQueryParamsOptions,
): (query: Record<string, unknown>) => Record<string, string | string[]> {
  const keep = nameFilter(options, (name) => CREDENTIAL_NAME_PATTERN.test(name));
  return (query) => {
    const captured: Record<string, string | string[]> = {};
    for (const name of Object.keys(query)) {
      // An own `__proto__` key would set the copy's prototype instead of a property.
      if (name === '__proto__' || !keep(name.toLowerCase())) continue;
      const value = query[name];
      if (typeof value === 'string' || (Array.isArray(value) && value.every((item) => typeof item === 'string'))) {
        captured[name] = value as string | string[];
      }
    }
    return captured;
  };
}
