import { Inject, Injectable, type Type } from '@nestjs/common';
import { DASHBOARD_CONTROLLER } from '../dashboard/dashboard.controller.js';
import { JOB_STATUSES } from '../job/index.js';
import { EndpointRegistry } from './endpoint-registry.js';
import { JOBS_CONTROLLER, type JobsController, MAX_WAIT_SECONDS } from './jobs.controller.js';
import { PROBLEM_CONTENT_TYPE } from './problem-details.js';
import { libraryLogger } from '../observability/library-logger.js';

type Swagger = typeof import('@nestjs/swagger');
type ResponseHeaders = Record<string, { description: string; schema: Record<string, unknown> }>;

/** `@nestjs/swagger` when the app has it installed, else null (injection token). */
export const OPENAPI_MODULE = Symbol('async-endpoints:openapi');

/**
 * Loads `@nestjs/swagger`, an optional peer dependency. Asynchronously, at module creation (before
 * `SwaggerModule.createDocument` can run): a synchronous `require()` of this ESM package works in
 * Node, but not in a test runner's module sandbox (Jest), where the docs would then go missing.
 */
export async function loadOpenApiModule(): Promise<object | null> {
  try {
    return await import('@nestjs/swagger');
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    const notInstalled =
      (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && message?.includes("'@nestjs/swagger'");
    if (notInstalled) return null;
    libraryLogger().warn(
      `@nestjs/swagger is installed but could not be loaded (${(error as Error).message}); async endpoints are not documented.`,
    );
    return null;
  }
}

/** The metadata key `@ApiResponse` writes: responses the app declared itself are left alone. */
const API_RESPONSE_METADATA = 'swagger/apiResponse';

/** Schemas of the documents the library answers; named by `@ApiSchema` once swagger is there. */
class JobDocumentSchema {}
class JobErrorSchema {}
class JobLinksSchema {}
class ProblemDetailsSchema {}

/** Methods already documented: decorating twice (two apps in one process) would repeat headers. */
const documented = new WeakSet<object>();

/**
 * With `@nestjs/swagger` installed, documents every `@AsyncEndpoint` route (the 202 answer with the
 * job document, `Location` and `Retry-After`, the idempotency headers, the problem answers) and the
 * status routes; leaves the dashboard out. Responses an app declared itself on a route win over these.
 */
@Injectable()
export class OpenApiDocumentation {
  // Typed loosely: the package's declarations must not need @nestjs/swagger's.
  constructor(
    @Inject(OPENAPI_MODULE) swagger: object | null,
    endpoints: EndpointRegistry,
    @Inject(JOBS_CONTROLLER) jobsController: Type<JobsController> | null,
    @Inject(DASHBOARD_CONTROLLER) dashboardController: Type<unknown> | null,
  ) {
    if (!swagger) return;
    // The dashboard is an operator's page behind its own guards, not part of the app's API.
    if (dashboardController) (swagger as Swagger).ApiExcludeController()(dashboardController);
    const api = new OpenApiDecorators(swagger as Swagger);
    api.describeSchemas();
    for (const route of endpoints.routes) {
      api.documentAsyncEndpoint(route.controllerClass.prototype, route.methodName);
    }
    if (jobsController) api.documentJobsController(jobsController);
  }
}

class OpenApiDecorators {
  constructor(private readonly swagger: Swagger) {}

  describeSchemas(): void {
    if (documented.has(JobDocumentSchema)) return;
    documented.add(JobDocumentSchema);
    const { ApiProperty, ApiPropertyOptional, ApiSchema } = this.swagger;
    const property = (target: object, name: string, options: Parameters<typeof ApiProperty>[0]) =>
      ApiProperty(options)(target, name);
    const optional = (target: object, name: string, options: Parameters<typeof ApiPropertyOptional>[0]) =>
      ApiPropertyOptional(options)(target, name);
    // Any JSON value (OpenAPI 3.0 has no `{}` that ApiProperty writes).
    const anyJson = {
      type: Object,
      nullable: true,
      oneOf: [
        { type: 'object' },
        { type: 'array', items: {} },
        { type: 'string' },
        { type: 'number' },
        { type: 'boolean' },
      ],
    };
    const time = (description: string, nullable = false) =>
      ({ type: 'string', format: 'date-time', description, nullable }) as const;

    ApiSchema({ name: 'AsyncJobError', description: "The last attempt's error." })(JobErrorSchema);
    const error = JobErrorSchema.prototype;
    property(error, 'code', { type: 'string', example: 'JOB_TIMEOUT' });
    property(error, 'message', { type: 'string' });
    optional(error, 'type', { type: 'string', description: 'Exception class (only with http.exposeErrorDetails).' });
    optional(error, 'stack', { type: 'string', description: 'Stack trace (only with http.exposeErrorDetails).' });

    ApiSchema({ name: 'AsyncJobLinks' })(JobLinksSchema);
    property(JobLinksSchema.prototype, 'self', {
      type: 'string',
      example: '/jobs/3f0c2a8e-5b7d-4c1e-9a2b-1d2e3f4a5b6c',
    });
    optional(JobLinksSchema.prototype, 'cancel', {
      type: 'string',
      description: 'Present while the job can be canceled.',
    });

    ApiSchema({ name: 'AsyncJobDocument', description: 'A job as clients see it.' })(JobDocumentSchema);
    const job = JobDocumentSchema.prototype;
    property(job, 'id', { type: 'string', format: 'uuid' });
    property(job, 'name', { type: 'string', description: 'The endpoint and handler name.' });
    property(job, 'status', { enum: [...JOB_STATUSES], enumName: 'AsyncJobStatus' });
    property(job, 'retryCount', { type: 'integer', minimum: 0 });
    property(job, 'maxRetries', { type: 'integer', minimum: 0 });
    property(job, 'progress', {
      ...anyJson,
      description: 'What the handler last reported: 0..100 or a small JSON object.',
    });
    property(job, 'createdAt', time('Submitted.'));
    property(job, 'startedAt', time('Start of the current or last attempt.', true));
    property(job, 'completedAt', time('When the job became terminal.', true));
    property(job, 'lastUpdatedAt', time('Last change.'));
    property(job, 'retryDelayUntil', time('While Scheduled: when the retry is due.', true));
    property(job, 'result', { ...anyJson, description: "The handler's return value, as JSON." });
    property(job, 'error', { type: () => JobErrorSchema, nullable: true });
    optional(job, 'links', { type: () => JobLinksSchema, description: 'Absent with http.jobsPath: false.' });

    ApiSchema({ name: 'ProblemDetails', description: 'RFC 9457 problem details.' })(ProblemDetailsSchema);
    const problem = ProblemDetailsSchema.prototype;
    property(problem, 'type', { type: 'string', example: 'about:blank' });
    property(problem, 'title', { type: 'string', example: 'Not Found' });
    property(problem, 'status', { type: 'integer', example: 404 });
    property(problem, 'detail', { type: 'string' });
    optional(problem, 'instance', { type: 'string', description: 'The request path.' });
    optional(problem, 'errors', {
      type: 'string',
      isArray: true,
      description: 'Validation violations, one line each.',
    });
    optional(problem, 'jobStatus', { enum: [...JOB_STATUSES], enumName: 'AsyncJobStatus', description: 'On 409.' });
  }

  documentAsyncEndpoint(prototype: object, methodName: string): void {
    const { ApiHeader, ApiExtraModels } = this.swagger;
    this.decorateMethod(prototype, methodName, [
      ApiExtraModels(JobDocumentSchema, ProblemDetailsSchema),
      ApiHeader({
        name: 'Idempotency-Key',
        required: false,
        description:
          'Makes the submit safe to repeat: a repeat with the same key, endpoint, owner and body answers 202 with the same job.',
        schema: { type: 'string', minLength: 1, maxLength: 255 },
      }),
      ApiHeader({
        name: 'X-Async-Request-Id',
        required: false,
        description:
          'A UUID chosen by the client: the job id, or with an owner a job id derived from both (read it from the answer); a repeat with the same id is an idempotent replay.',
        schema: { type: 'string', format: 'uuid' },
      }),
      ...this.responses(prototype, methodName, {
        202: {
          description: 'Accepted: the job is stored. Poll `Location` until its status is terminal.',
          type: JobDocumentSchema,
          headers: { ...locationHeader(), ...retryAfterHeader(), ...noStoreHeader() },
        },
        400: this.problem('Invalid body (see `errors`), malformed JSON, or a malformed idempotency header.'),
        413: this.problem('The body is larger than http.bodyLimitBytes.'),
        415: this.problem('A body that is not application/json.'),
        422: this.problem('The idempotency key (or X-Async-Request-Id) was used for a different request.'),
        429: this.problem('The queue is full (worker.maximumQueueSize).', retryAfterHeader()),
        503: this.problem('The job store is unavailable.', retryAfterHeader()),
      }),
    ]);
  }

  documentJobsController(controller: Type<JobsController>): void {
    if (documented.has(controller)) return;
    documented.add(controller);
    const { ApiTags, ApiExtraModels, ApiOperation, ApiParam, ApiQuery } = this.swagger;
    ApiTags('jobs')(controller);
    ApiExtraModels(JobDocumentSchema, ProblemDetailsSchema)(controller);
    const id = ApiParam({ name: 'id', description: 'The job id.', schema: { type: 'string', format: 'uuid' } });
    const prototype = controller.prototype as object;
    this.decorateMethod(prototype, 'get', [
      ApiOperation({
        summary: 'Read a job',
        description: 'With `waitSeconds`, answers as soon as the job is terminal or after that many seconds.',
      }),
      id,
      ApiQuery({
        name: 'waitSeconds',
        required: false,
        description: 'Long-poll: wait up to this many seconds for the job to become terminal.',
        schema: { type: 'integer', minimum: 0, maximum: MAX_WAIT_SECONDS, default: 0 },
      }),
      ...this.responses(prototype, 'get', {
        200: {
          description: 'The job. While it is pending, `Retry-After` says when to ask again.',
          type: JobDocumentSchema,
          headers: { ...retryAfterHeader('Only while the job is pending.'), ...noStoreHeader() },
        },
        202: {
          description: 'The job, still pending (only with http.pendingStatusCode: 202).',
          type: JobDocumentSchema,
          headers: { ...locationHeader(), ...retryAfterHeader(), ...noStoreHeader() },
        },
        400: this.problem('The id is not a UUID, or waitSeconds is not a whole number from 0 to 30.'),
        404: this.problem('No such job: unknown, expired, or owned by someone else.'),
        503: this.problem('The job store is unavailable.', retryAfterHeader()),
      }),
    ]);
    this.decorateMethod(prototype, 'cancel', [
      ApiOperation({ summary: 'Cancel a job' }),
      id,
      ...this.responses(prototype, 'cancel', {
        200: {
          description: 'The job was waiting and is now Canceled.',
          type: JobDocumentSchema,
          headers: noStoreHeader(),
        },
        202: {
          description: 'The job is running: cancellation was requested, its handler is being stopped.',
          type: JobDocumentSchema,
          headers: { ...retryAfterHeader(), ...noStoreHeader() },
        },
        400: this.problem('The id is not a UUID.'),
        404: this.problem('No such job: unknown, expired, or owned by someone else.'),
        409: this.problem('The job is already terminal (see `jobStatus`).'),
        503: this.problem('The job store is unavailable.', retryAfterHeader()),
      }),
    ]);
  }

  /** One `@ApiResponse` per status the route has not declared itself. */
  private responses(
    prototype: object,
    methodName: string,
    byStatus: Record<number, Record<string, unknown>>,
  ): MethodDecorator[] {
    const method = (prototype as Record<string, object>)[methodName]!;
    const declared = (Reflect.getMetadata(API_RESPONSE_METADATA, method) ?? {}) as Record<string, unknown>;
    return Object.entries(byStatus)
      .filter(([status]) => !(status in declared))
      .map(([status, options]) => this.swagger.ApiResponse({ status: Number(status), ...options }) as MethodDecorator);
  }

  private problem(description: string, headers: ResponseHeaders = {}): Record<string, unknown> {
    return {
      description,
      headers: { ...headers, ...noStoreHeader() },
      // Read after describeSchemas() named the schema.
      content: { [PROBLEM_CONTENT_TYPE]: { schema: { $ref: this.swagger.getSchemaPath(ProblemDetailsSchema) } } },
    };
  }

  private decorateMethod(prototype: object, methodName: string, decorators: MethodDecorator[]): void {
    const descriptor = Object.getOwnPropertyDescriptor(prototype, methodName);
    if (!descriptor || documented.has(descriptor.value as object)) return;
    documented.add(descriptor.value as object);
    for (const decorate of decorators) decorate(prototype, methodName, descriptor);
  }
}

function locationHeader(): ResponseHeaders {
  return {
    Location: {
      description: 'Path of the status resource, `GET` it to poll.',
      schema: { type: 'string', example: '/jobs/3f0c2a8e-5b7d-4c1e-9a2b-1d2e3f4a5b6c' },
    },
  };
}

function retryAfterHeader(description = 'Seconds to wait before asking again.'): ResponseHeaders {
  return { 'Retry-After': { description, schema: { type: 'integer', minimum: 1 } } };
}

function noStoreHeader(): ResponseHeaders {
  return { 'Cache-Control': { description: 'Always `no-store`.', schema: { type: 'string', example: 'no-store' } } };
}
