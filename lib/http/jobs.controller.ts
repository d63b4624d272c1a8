import {
  Controller,
  Delete,
  Get,
  HttpStatus,
  Inject,
  Param,
  Query,
  Req,
  Res,
  type Type,
  UseFilters,
} from '@nestjs/common';
import { ASYNC_ENDPOINTS_OPTIONS } from '../async-endpoints.module-definition.js';
import { AsyncEndpointsService } from '../async-endpoints.service.js';
import { isTerminal, toJobDocument, type Job, type JobDocument } from '../job/index.js';
import type { AsyncEndpointRequest, ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';
import { setResponseHeader, setResponseStatus, type HttpResponse } from './http-response.js';
import { isJobId } from './job-id.js';
import { JobLocations } from './job-locations.js';
import { ProblemDetailsFilter } from './problem-details.filter.js';
import { problem, ProblemException } from './problem-details.js';
import { libraryLogger } from '../observability/library-logger.js';

interface Reply extends HttpResponse {
  /** Fastify: the Node.js response under the reply. */
  raw?: NodeJS.EventEmitter;
  on?(event: 'close', listener: () => void): unknown;
  off?(event: 'close', listener: () => void): unknown;
}

/** Longest long-poll, `GET <jobsPath>/:id?waitSeconds=30`. */
export const MAX_WAIT_SECONDS = 30;

/** At most one warning per this period while long-polls are over `http.maxLongPolls`. */
const LONG_POLL_CAP_WARNING_MS = 60_000;

/** Injection token of the module's status controller class, null when it has none (`jobsPath: false`). */
export const JOBS_CONTROLLER = Symbol('async-endpoints:jobs-controller');

/**
 * The status resource: `GET` and `DELETE <http.jobsPath>/:id`. Each AsyncEndpointsModule mounts its
 * own subclass (jobsControllerClass), at the path of its options.
 */
@UseFilters(ProblemDetailsFilter)
export class JobsController {
  private readonly logger = libraryLogger();
  /** Long-polls this app holds open now; `http.maxLongPolls` caps them. */
  private longPolls = 0;
  private lastCapWarningAt = -Infinity;

  constructor(
    private readonly service: AsyncEndpointsService,
    private readonly locations: JobLocations,
    @Inject(ASYNC_ENDPOINTS_OPTIONS) private readonly options: ResolvedAsyncEndpointsOptions,
  ) {}

  /**
   * `?waitSeconds=N` (0..30): a long-poll, answered as soon as the job is terminal or N seconds passed.
   * Beyond `http.maxLongPolls` open long-polls, answered at once as a plain GET.
   */
  async get(
    @Param('id') id: string,
    @Query('waitSeconds') waitSeconds: unknown,
    @Req() request: AsyncEndpointRequest,
    @Res({ passthrough: true }) reply: Reply,
  ): Promise<JobDocument> {
    const waitMs = parseWaitSeconds(waitSeconds) * 1000;
    const job =
      waitMs > 0 && this.admitLongPoll()
        ? await this.waitFor(id, waitMs, request, reply)
        : await this.find(id, request);
    const pending = !isTerminal(job.status);
    const location = this.locations.of(job.id);
    if (pending) setResponseHeader(reply, 'Retry-After', String(this.options.http.retryAfterSeconds));
    if (pending && this.options.http.pendingStatusCode === HttpStatus.ACCEPTED) {
      setResponseStatus(reply, HttpStatus.ACCEPTED);
      if (location) setResponseHeader(reply, 'Location', location);
    } else {
      setResponseStatus(reply, HttpStatus.OK);
    }
    return this.document(job, location, reply);
  }

  async cancel(
    @Param('id') id: string,
    @Req() request: AsyncEndpointRequest,
    @Res({ passthrough: true }) reply: Reply,
  ): Promise<JobDocument> {
    const { id: jobId } = await this.find(id, request);
    const result = await this.service.cancel(jobId, { owner: this.ownerOf(request) });
    switch (result.outcome) {
      case 'not-found':
        throw notFound(id);
      case 'already-terminal':
        throw new ProblemException(
          problem(HttpStatus.CONFLICT, `Job ${id} is already ${result.job.status}; it cannot be canceled.`, {
            jobStatus: result.job.status,
          }),
        );
      case 'canceled':
        setResponseStatus(reply, HttpStatus.OK);
        return this.document(result.job, this.locations.of(jobId), reply);
      case 'cancel-requested':
        setResponseStatus(reply, HttpStatus.ACCEPTED);
        setResponseHeader(reply, 'Retry-After', String(this.options.http.retryAfterSeconds));
        return this.document(result.job, this.locations.of(jobId), reply);
    }
  }

  private async find(id: string, request: AsyncEndpointRequest): Promise<Job> {
    const job = await this.service.getJob(checkedId(id), this.ownerOf(request));
    if (!job) throw notFound(id);
    return job;
  }

  /** Whether one more long-poll fits under `http.maxLongPolls`; each open one holds a socket and memory. */
  private admitLongPoll(): boolean {
    const max = this.options.http.maxLongPolls;
    if (this.longPolls < max) return true;
    const now = Date.now();
    if (now - this.lastCapWarningAt >= LONG_POLL_CAP_WARNING_MS) {
      this.lastCapWarningAt = now;
      this.logger.warn(
        `${max} long-polls (GET ?waitSeconds=N) are open, the most http.maxLongPolls allows: further ones are answered ` +
          'at once, as a plain GET. Raise http.maxLongPolls if this process has the memory for more (about 23 KB each).',
      );
    }
    return false;
  }

  /** Waits without polling the store; a client that goes away ends the wait at once. */
  private async waitFor(id: string, timeoutMs: number, request: AsyncEndpointRequest, reply: Reply): Promise<Job> {
    const jobId = checkedId(id);
    const response = reply.raw ?? reply;
    const gone = new AbortController();
    const onClose = () => gone.abort();
    response.on?.('close', onClose);
    // A client that left while the guards and pipes ran: its 'close' has been emitted already.
    if ((response as { destroyed?: boolean }).destroyed) gone.abort();
    this.longPolls++;
    try {
      const job = await this.service.waitForJob(jobId, {
        owner: this.ownerOf(request),
        timeoutMs,
        signal: gone.signal,
      });
      if (!job) throw notFound(id);
      return job;
    } finally {
      this.longPolls--;
      response.off?.('close', onClose);
    }
  }

  private ownerOf(request: AsyncEndpointRequest): string | undefined {
    return this.options.jobOwner?.(request) ?? undefined;
  }

  private document(job: Job, location: string | undefined, reply: Reply): JobDocument {
    setResponseHeader(reply, 'Cache-Control', 'no-store');
    return toJobDocument(job, location, this.options.http.exposeErrorDetails);
  }
}

/**
 * A status controller class of its own for one AsyncEndpointsModule: its routes and path are set
 * when the module's options are known (mountJobsController), without touching another app's.
 */
export function jobsControllerClass(): Type<JobsController> {
  // Own methods: the route decorators put their metadata on the method function.
  class MountedJobsController extends JobsController {
    override get(...args: Parameters<JobsController['get']>): Promise<JobDocument> {
      return super.get(...args);
    }

    override cancel(...args: Parameters<JobsController['cancel']>): Promise<JobDocument> {
      return super.cancel(...args);
    }
  }
  Object.defineProperty(MountedJobsController, 'name', { value: JobsController.name });
  return MountedJobsController;
}

/**
 * Mounts a class from jobsControllerClass at `jobsPath`, before the app registers its routes (they
 * are read then). With `false` it gets no routes: an app whose options come from forRootAsync lists
 * it, with nothing under it.
 */
export function mountJobsController(controller: Type<JobsController>, jobsPath: string | false): void {
  if (jobsPath !== false) {
    const prototype = controller.prototype as JobsController;
    Get(':id')(prototype, 'get', Object.getOwnPropertyDescriptor(prototype, 'get')!);
    Delete(':id')(prototype, 'cancel', Object.getOwnPropertyDescriptor(prototype, 'cancel')!);
  }
  Controller(jobsPath === false ? '' : jobsPath)(controller);
}

function checkedId(id: string): string {
  if (!isJobId(id)) {
    throw new ProblemException(
      problem(HttpStatus.BAD_REQUEST, `'${String(id).slice(0, 64)}' is not a job id; job ids are UUIDs.`),
    );
  }
  return id.toLowerCase();
}

/** `waitSeconds`: absent, or a whole number of seconds from 0 to 30; anything else is a 400. */
function parseWaitSeconds(value: unknown): number {
  if (value === undefined) return 0;
  const seconds = typeof value === 'string' && /^\d{1,2}$/.test(value) ? Number(value) : value;
  if (typeof seconds === 'number' && Number.isInteger(seconds) && seconds >= 0 && seconds <= MAX_WAIT_SECONDS) {
    return seconds;
  }
  throw new ProblemException(
    problem(
      HttpStatus.BAD_REQUEST,
      `waitSeconds must be a whole number of seconds from 0 to ${MAX_WAIT_SECONDS}; got ${JSON.stringify(value)?.slice(0, 64)}.`,
    ),
  );
}

function notFound(id: string): ProblemException {
  return new ProblemException(
    problem(HttpStatus.NOT_FOUND, `No job ${id}: the id is unknown, expired after its retention period, or not yours.`),
  );
}
