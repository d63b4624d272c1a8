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

/** Reads and checks the idempotency headers; a malformed one is a 400, never a silent new job. */
export function readIdempotencyHeaders(headers: Record<string, string | string[] | undefined>): IdempotencyHeaders {
  // Node joins repeated headers of these names into one string, so each is a string or absent.
  const jobId = headers['x-async-request-id'] as string | undefined;
  const idempotencyKey = headers['idempotency-key'] as string | undefined;
  if (jobId !== undefined && !isJobId(jobId)) {
    throw new ProblemException(
      problem(
        HttpStatus.BAD_REQUEST,
        'X-Async-Request-Id must be a UUID such as 3f0c2a8e-5b7d-4c1e-9a2b-1d2e3f4a5b6c.',
      ),
    );
  }
  if (idempotencyKey !== undefined && !PRINTABLE.test(idempotencyKey)) {
    throw new ProblemException(
      problem(HttpStatus.BAD_REQUEST, 'Idempotency-Key must be 1 to 255 printable ASCII characters.'),
    );
  }
  return { jobId: jobId?.toLowerCase(), idempotencyKey };
}
