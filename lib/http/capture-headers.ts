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
const TRANSPORT_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'content-length', 'te', 'trailer']);

/** The request headers to store with a job, names in lower case, repeated values joined by ", ". */
export function captureHeaders(
  headers: Record<string, string | string[] | undefined>,
  options: CaptureHeadersOptions,
): Record<string, string> {
  const include = options.include && new Set(options.include.map((name) => name.toLowerCase()));
  const exclude = new Set((options.exclude ?? []).map((name) => name.toLowerCase()));
  const captured: Record<string, string> = {};
  for (const [rawName, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const name = rawName.toLowerCase();
    if (exclude.has(name)) continue;
    if (include ? !include.has(name) : SENSITIVE_HEADERS.includes(name) || TRANSPORT_HEADERS.has(name)) continue;
    captured[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return captured;
}
