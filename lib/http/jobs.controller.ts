import { Controller, Delete, Get, HttpStatus, Inject, Param, Req, Res, UseFilters } from '@nestjs/common';
import { ASYNC_ENDPOINTS_OPTIONS } from '../async-endpoints.module-definition.js';
import { AsyncEndpointsService } from '../async-endpoints.service.js';
import { isTerminal, toJobDocument, type Job, type JobDocument } from '../job/index.js';
import type { AsyncEndpointRequest, ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';
import { isJobId } from './job-id.js';
import { JobLocations } from './job-locations.js';
import { problem, ProblemDetailsFilter, ProblemException } from './problem-details.js';

interface Reply {
  status?(code: number): unknown;
  code?(code: number): unknown;
  setHeader?(name: string, value: string): void;
  header?(name: string, value: string): unknown;
}

/**
 * The status resource: `GET` and `DELETE <http.jobsPath>/:id`. Its path is set from the options at
 * boot (see AsyncEndpointsModule).
 */
@Controller()
@UseFilters(ProblemDetailsFilter)
export class JobsController {
  constructor(
    private readonly service: AsyncEndpointsService,
    private readonly locations: JobLocations,
    @Inject(ASYNC_ENDPOINTS_OPTIONS) private readonly options: ResolvedAsyncEndpointsOptions,
  ) {}

  @Get(':id')
  async get(
    @Param('id') id: string,
    @Req() request: AsyncEndpointRequest,
    @Res({ passthrough: true }) reply: Reply,
  ): Promise<JobDocument> {
    const job = await this.find(id, request);
    const pending = !isTerminal(job.status);
    const location = this.locations.of(job.id);
    if (pending) this.header(reply, 'Retry-After', String(this.options.http.retryAfterSeconds));
    if (pending && this.options.http.pendingStatusCode === HttpStatus.ACCEPTED) {
      this.status(reply, HttpStatus.ACCEPTED);
      if (location) this.header(reply, 'Location', location);
    } else {
      this.status(reply, HttpStatus.OK);
    }
    return this.document(job, location, reply);
  }

  @Delete(':id')
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
        this.status(reply, HttpStatus.OK);
        return this.document(result.job, this.locations.of(jobId), reply);
      case 'cancel-requested':
        this.status(reply, HttpStatus.ACCEPTED);
        this.header(reply, 'Retry-After', String(this.options.http.retryAfterSeconds));
        return this.document(result.job, this.locations.of(jobId), reply);
    }
  }

  private async find(id: string, request: AsyncEndpointRequest): Promise<Job> {
    if (!isJobId(id)) {
      throw new ProblemException(problem(HttpStatus.BAD_REQUEST, `'${String(id).slice(0, 64)}' is not a job id; job ids are UUIDs.`));
    }
    const job = await this.service.getJob(id.toLowerCase(), this.ownerOf(request));
    if (!job) throw notFound(id);
    return job;
  }

  private ownerOf(request: AsyncEndpointRequest): string | undefined {
    return this.options.jobOwner?.(request) ?? undefined;
  }

  private document(job: Job, location: string | undefined, reply: Reply): JobDocument {
    this.header(reply, 'Cache-Control', 'no-store');
    return toJobDocument(job, location, this.options.http.exposeErrorDetails);
  }

  private status(reply: Reply, code: number): void {
    if (reply.status) reply.status(code);
    else reply.code?.(code);
  }

  private header(reply: Reply, name: string, value: string): void {
    if (reply.setHeader) reply.setHeader(name, value);
    else reply.header?.(name, value);
  }
}

function notFound(id: string): ProblemException {
  return new ProblemException(
    problem(HttpStatus.NOT_FOUND, `No job ${id}: the id is unknown, expired after its retention period, or not yours.`),
  );
}
