import { HttpStatus } from '@nestjs/common';
import { isJobId } from '../http/job-id.js';
import { problem, ProblemException } from '../http/problem-details.js';
import { JOB_STATUSES, type JobStatus } from '../job/index.js';
import type { ListOptions, PurgeOptions } from '../async-endpoints.service.js';
import type { TerminalJobStatus } from '../store/job-store.js';

/** Largest page of `GET <path>/api/jobs`. */
export const MAX_PAGE_SIZE = 200;
/** Most jobs one `POST <path>/api/purge` deletes. */
export const MAX_PURGE_LIMIT = 10_000;

const TERMINAL: readonly TerminalJobStatus[] = ['Completed', 'Failed', 'Canceled'];

function badRequest(detail: string): ProblemException {
  return new ProblemException(problem(HttpStatus.BAD_REQUEST, detail));
}

const shown = (value: unknown) => JSON.stringify(value)?.slice(0, 64) ?? String(value);

function optionalText(value: unknown, field: string, maxLength: number): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || value.length > maxLength) {
    throw badRequest(`${field} must be a single text of at most ${maxLength} characters; got ${shown(value)}.`);
  }
  return value;
}

function integer(value: unknown, field: string, min: number, max: number, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const number = typeof value === 'string' && /^\d{1,9}$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < min || number > max) {
    throw badRequest(`${field} must be a whole number from ${min} to ${max}; got ${shown(value)}.`);
  }
  return number;
}

/** `GET <path>/api/jobs?status=&name=&owner=&limit=&cursor=`. */
export function listQuery(query: Record<string, unknown>): ListOptions {
  const status = query.status;
  if (!JOB_STATUSES.includes(status as JobStatus)) {
    throw badRequest(`status must be one of ${JOB_STATUSES.join(', ')}; got ${shown(status)}.`);
  }
  return {
    status: status as JobStatus,
    name: optionalText(query.name, 'name', 200),
    owner: optionalText(query.owner, 'owner', 500),
    cursor: optionalText(query.cursor, 'cursor', 2000) ?? null,
    limit: integer(query.limit, 'limit', 1, MAX_PAGE_SIZE, 50),
  };
}

/** `POST <path>/api/purge` with `{ status, olderThanSeconds, name?, limit? }`. */
export function purgeBody(body: unknown): PurgeOptions {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest('The body must be a JSON object { status, olderThanSeconds, name?, limit? }.');
  }
  const { status, olderThanSeconds, name, limit } = body as Record<string, unknown>;
  if (!TERMINAL.includes(status as TerminalJobStatus)) {
    throw badRequest(
      `status must be one of ${TERMINAL.join(', ')} (live jobs are never purged); got ${shown(status)}.`,
    );
  }
  if (typeof olderThanSeconds !== 'number' || !Number.isInteger(olderThanSeconds) || olderThanSeconds < 0) {
    throw badRequest(`olderThanSeconds must be a whole number of seconds, 0 or more; got ${shown(olderThanSeconds)}.`);
  }
  return {
    status: status as TerminalJobStatus,
    olderThanMs: olderThanSeconds * 1000,
    name: optionalText(name, 'name', 200),
    limit: integer(limit, 'limit', 1, MAX_PURGE_LIMIT, 1000),
  };
}

export function jobId(id: string): string {
  if (!isJobId(id)) throw badRequest(`'${String(id).slice(0, 64)}' is not a job id; job ids are UUIDs.`);
  return id.toLowerCase();
}
