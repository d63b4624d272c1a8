import { HttpStatus } from '@nestjs/common';
import { isJobId } from './job-id.js';
import { problem, ProblemException } from './problem-details.js';

export interface IdempotencyHeaders {
  /** `X-Async-Request-Id`: the client chooses the job id. */
  jobId?: string;
  /** `Idempotency-Key`: any 1..255 printable characters. */
  idempotencyKey?: string;
}

const PRINTABLE = /^[\x20-\x7E]{1,255}$/;

function single(value: string | string[] | undefined, name: string): string | undefined {
  if (Array.isArray(value)) {
    throw new ProblemException(problem(HttpStatus.BAD_REQUEST, `Send the ${name} header once.`));
  }
  return value;
}

/** Reads and checks the idempotency headers; a malformed one is a 400, never a silent new job. */
export function readIdempotencyHeaders(headers: Record<string, string | string[] | undefined>): IdempotencyHeaders {
  const jobId = single(headers['x-async-request-id'], 'X-Async-Request-Id');
  const idempotencyKey = single(headers['idempotency-key'], 'Idempotency-Key');
  if (jobId !== undefined && !isJobId(jobId)) {
    throw new ProblemException(
      problem(HttpStatus.BAD_REQUEST, 'X-Async-Request-Id must be a UUID such as 3f0c2a8e-5b7d-4c1e-9a2b-1d2e3f4a5b6c.'),
    );
  }
  if (idempotencyKey !== undefined && !PRINTABLE.test(idempotencyKey)) {
    throw new ProblemException(
      problem(HttpStatus.BAD_REQUEST, 'Idempotency-Key must be 1 to 255 printable ASCII characters.'),
    );
  }
  return { jobId: jobId?.toLowerCase(), idempotencyKey };
}
