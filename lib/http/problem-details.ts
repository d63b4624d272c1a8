import { HttpException } from '@nestjs/common';
import { STATUS_CODES } from 'node:http';
import { setResponseHeader, setResponseStatus, type HttpResponse } from './http-response.js';

/** RFC 9457 problem details, the body of every error the library answers. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  /** Validation violations, one line each. */
  errors?: string[];
  [extension: string]: unknown;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** A problem document with `type: 'about:blank'` and the status's standard title; `extensions` add or override fields. */
export function problem(status: number, detail: string, extensions: Partial<ProblemDetails> = {}): ProblemDetails {
  return {
    type: 'about:blank',
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    ...extensions,
  };
}

/** An HttpException whose body is already a problem document. */
export class ProblemException extends HttpException {
  constructor(
    readonly problemDetails: ProblemDetails,
    readonly headers: Record<string, string> = {},
  ) {
    super(problemDetails, problemDetails.status);
  }
}

/** An Express response or Fastify reply, with what sending a problem needs beyond the status and headers. */
interface WireResponse extends HttpResponse {
  send(body: string): void;
  headersSent?: boolean;
  sent?: boolean;
}

export function sendProblem(response: unknown, body: ProblemDetails, headers: Record<string, string> = {}): void {
  const res = response as WireResponse;
  if (res.headersSent || res.sent) return;
  setResponseHeader(res, 'Content-Type', PROBLEM_CONTENT_TYPE);
  setResponseHeader(res, 'Cache-Control', 'no-store');
  for (const [name, value] of Object.entries(headers)) setResponseHeader(res, name, value);
  setResponseStatus(res, body.status);
  res.send(JSON.stringify(body));
}
