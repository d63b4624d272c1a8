import {
  Body,
  Controller,
  Get,
  Headers,
  HttpCode,
  HttpStatus,
  Inject,
  Param,
  Post,
  Query,
  Req,
  Res,
  type Type,
  UseFilters,
  UseGuards,
} from '@nestjs/common';
import { ASYNC_ENDPOINTS_OPTIONS } from '../async-endpoints.module-definition.js';
import { AsyncEndpointsService } from '../async-endpoints.service.js';
import { setResponseHeader, type HttpResponse } from '../http/http-response.js';
import { ProblemDetailsFilter } from '../http/problem-details.filter.js';
import { problem, ProblemException } from '../http/problem-details.js';
import type { Job, JobStatus } from '../job/index.js';
import type { ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';
import { InvalidCursorError, type JobStats } from '../store/job-store.js';
import { dashboardAsset, dashboardPage } from './dashboard-assets.js';
import { jobId, listQuery, purgeBody } from './dashboard-input.js';
import { toDashboardDetail, toDashboardRow, type DashboardJobDetail, type DashboardJobRow } from './dashboard-job.js';
import { DashboardGuards } from './dashboard.guard.js';

/** Injection token of the module's dashboard controller class, null when it has none (forRoot without `dashboard.enabled`). */
export const DASHBOARD_CONTROLLER = Symbol('async-endpoints:dashboard-controller');

type Reply = HttpResponse;
type Request = { originalUrl?: string; url?: string };

/** What an action answers: what it did, and the job as it is now. */
export interface DashboardActionResult {
  outcome: string;
  job: DashboardJobDetail;
}

/**
 * The dashboard (docs/dashboard.md): its page and assets, and its JSON API under `api/`. Each
 * AsyncEndpointsModule mounts its own subclass (dashboardControllerClass) at `dashboard.path`.
 */
@UseFilters(ProblemDetailsFilter)
@UseGuards(DashboardGuards)
export class DashboardController {
  constructor(
    private readonly service: AsyncEndpointsService,
    @Inject(ASYNC_ENDPOINTS_OPTIONS) private readonly options: ResolvedAsyncEndpointsOptions,
  ) {}

  page(@Req() request: Request, @Res({ passthrough: true }) reply: Reply): string {
    const path = (request.originalUrl ?? request.url ?? '/').split('?')[0]!;
    setResponseHeader(reply, 'Content-Type', 'text/html; charset=utf-8');
    setResponseHeader(reply, 'Cache-Control', 'no-store');
    return dashboardPage(path, this.options.dashboard);
  }

  asset(@Param('file') file: string, @Res({ passthrough: true }) reply: Reply): string {
    const asset = dashboardAsset(file);
    if (!asset)
      throw new ProblemException(problem(HttpStatus.NOT_FOUND, `The dashboard has no asset '${file.slice(0, 64)}'.`));
    setResponseHeader(reply, 'Content-Type', asset.type);
    // The page asks for `?v=<content hash>`: a new version is a new URL.
    setResponseHeader(reply, 'Cache-Control', 'private, max-age=86400');
    return asset.body;
  }

  async stats(@Res({ passthrough: true }) reply: Reply): Promise<JobStats> {
    setResponseHeader(reply, 'Cache-Control', 'no-store');
    return this.service.stats();
  }

  async list(
    @Query() query: Record<string, unknown>,
    @Res({ passthrough: true }) reply: Reply,
  ): Promise<{ jobs: DashboardJobRow[]; nextCursor: string | null }> {
    const options = listQuery(query);
    const page = await this.service.listJobs(options).catch((error: unknown) => {
      // A cursor the store did not issue: the client's mistake, not the server's.
      if (error instanceof InvalidCursorError) {
        throw new ProblemException(
          problem(
            HttpStatus.BAD_REQUEST,
            'cursor is not one this list returned: pass a nextCursor as it came, or none for the first page.',
          ),
        );
      }
      throw error;
    });
    setResponseHeader(reply, 'Cache-Control', 'no-store');
    return { jobs: page.jobs.map(toDashboardRow), nextCursor: page.nextCursor };
  }

  async detail(@Param('id') id: string, @Res({ passthrough: true }) reply: Reply): Promise<DashboardJobDetail> {
    const job = await this.find(id);
    setResponseHeader(reply, 'Cache-Control', 'no-store');
    return this.view(job);
  }

  async retry(@Param('id') id: string, @Headers('content-type') type: unknown): Promise<DashboardActionResult> {
    this.assertAction(type);
    const result = await this.service.retry(jobId(id));
    if (result.outcome === 'not-found') throw notFound(id);
    if (result.outcome === 'not-retryable') {
      throw conflict(
        `Job ${id} is ${result.job.status}: only Failed or Canceled jobs can be retried.`,
        result.job.status,
      );
    }
    return { outcome: result.outcome, job: this.view(result.job) };
  }

  async cancel(@Param('id') id: string, @Headers('content-type') type: unknown): Promise<DashboardActionResult> {
    this.assertAction(type);
    const job = await this.find(id);
    // The dashboard acts for the operator: the job's own owner, whoever it is.
    const result = await this.service.cancel(job.id, { owner: job.owner ?? undefined });
    if (result.outcome === 'not-found') throw notFound(id);
    if (result.outcome === 'already-terminal') {
      throw conflict(`Job ${id} is already ${result.job.status}; it cannot be canceled.`, result.job.status);
    }
    return { outcome: result.outcome, job: this.view(result.job) };
  }

  async purge(
    @Body() body: unknown,
    @Headers('content-type') type: unknown,
  ): Promise<{ purged: number; ids: string[]; more: boolean }> {
    this.assertAction(type);
    const options = purgeBody(body);
    const ids = await this.service.purge(options);
    return { purged: ids.length, ids, more: ids.length === options.limit };
  }

  /**
   * Actions: refused in read-only mode; and only with a JSON body, which a cross-site form cannot
   * send without the browser asking the server first (CORS): a forged form post changes nothing.
   */
  private assertAction(contentType: unknown): void {
    if (this.options.dashboard.readOnly) {
      throw new ProblemException(
        problem(
          HttpStatus.FORBIDDEN,
          'The dashboard is read-only (dashboard.readOnly: true): retry, cancel and purge are refused.',
        ),
      );
    }
    if (typeof contentType !== 'string' || !/^application\/json\s*(;|$)/i.test(contentType)) {
      throw new ProblemException(
        problem(
          HttpStatus.UNSUPPORTED_MEDIA_TYPE,
          'Dashboard actions take a JSON body: send Content-Type: application/json.',
        ),
      );
    }
  }

  private async find(id: string): Promise<Job> {
    const job = await this.service.getStoredJob(jobId(id));
    if (!job) throw notFound(id);
    return job;
  }

  private view(job: Job): DashboardJobDetail {
    return toDashboardDetail(job, {
      hidePayloads: this.options.dashboard.hidePayloads,
      exposeErrorDetails: this.options.http.exposeErrorDetails,
    });
  }
}

function notFound(id: string): ProblemException {
  return new ProblemException(
    problem(
      HttpStatus.NOT_FOUND,
      `No job ${id.slice(0, 64)}: the id is unknown, or it expired after its retention period.`,
    ),
  );
}

function conflict(detail: string, jobStatus: JobStatus): ProblemException {
  return new ProblemException(problem(HttpStatus.CONFLICT, detail, { jobStatus }));
}

type RouteMethod = Exclude<keyof DashboardController, 'constructor'>;

/** The dashboard's routes, under `dashboard.path`. */
const ROUTES: readonly { verb: typeof Get; path: string; method: RouteMethod }[] = [
  { verb: Get, path: '', method: 'page' },
  { verb: Get, path: 'assets/:file', method: 'asset' },
  { verb: Get, path: 'api/stats', method: 'stats' },
  { verb: Get, path: 'api/jobs', method: 'list' },
  { verb: Get, path: 'api/jobs/:id', method: 'detail' },
  { verb: Post, path: 'api/jobs/:id/retry', method: 'retry' },
  { verb: Post, path: 'api/jobs/:id/cancel', method: 'cancel' },
  { verb: Post, path: 'api/purge', method: 'purge' },
];

/**
 * A dashboard controller class of its own for one AsyncEndpointsModule: its routes and path are set
 * when the module's options are known (mountDashboardController), without touching another app's.
 */
export function dashboardControllerClass(): Type<DashboardController> {
  class MountedDashboardController extends DashboardController {}
  // Own methods: the route decorators put their metadata on the method function.
  for (const { method } of ROUTES) {
    const inherited = DashboardController.prototype[method] as (...args: unknown[]) => unknown;
    Object.defineProperty(MountedDashboardController.prototype, method, {
      value: function (this: DashboardController, ...args: unknown[]) {
        return inherited.apply(this, args);
      },
      writable: true,
      configurable: true,
    });
  }
  Object.defineProperty(MountedDashboardController, 'name', { value: DashboardController.name });
  return MountedDashboardController;
}

/** Mounts a class from dashboardControllerClass at `dashboard.path`; disabled, it gets no routes. */
export function mountDashboardController(
  controller: Type<DashboardController>,
  { enabled, path }: ResolvedAsyncEndpointsOptions['dashboard'],
): void {
  if (enabled) {
    const prototype = controller.prototype as DashboardController;
    for (const { verb, path: route, method } of ROUTES) {
      verb(route)(prototype, method, Object.getOwnPropertyDescriptor(prototype, method)!);
      if (verb === Post)
        HttpCode(HttpStatus.OK)(prototype, method, Object.getOwnPropertyDescriptor(prototype, method)!);
    }
  }
  Controller(enabled ? path : '')(controller);
}
