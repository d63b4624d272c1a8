import { Type } from 'class-transformer';
import {
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsNotEmpty,
  IsOptional,
  IsPositive,
  IsString,
  Matches,
  Max,
  Min,
  ValidateIf,
  ValidateBy,
  ValidateNested,
  type ValidationOptions,
} from 'class-validator';
import { MAX_JSON_DEPTH_LIMIT } from '../job/json-input.js';
import { MAX_TIMER_MS } from '../timers/max-timer.js';

/** A guard: a class (a function) or an object with `canActivate`. */
function IsGuard(options: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isGuard',
      validator: {
        validate: (value: unknown) =>
          typeof value === 'function' ||
          (typeof value === 'object' &&
            value !== null &&
            typeof (value as { canActivate?: unknown }).canActivate === 'function'),
      },
    },
    options,
  );
}

/*
 * class-validator schemas of the module options. Each nested class is one options group;
 * every value is optional (defaults fill the gaps) but must be valid when given.
 */

export class WorkerOptionsSchema {
  @IsOptional() @IsBoolean() enabled?: boolean;
  @IsOptional() @IsString() @IsNotEmpty() workerId?: string;
  @IsOptional() @IsInt() @Min(1) @Max(10_000) maximumConcurrency?: number;
  @IsOptional() @IsInt() @Min(1) @Max(MAX_TIMER_MS) pollingIntervalMs?: number;
  @IsOptional() @IsInt() @Min(1) @Max(1000) batchSize?: number;
  @IsOptional() @IsPositive() @Max(Math.floor(MAX_TIMER_MS / 60_000)) jobTimeoutMinutes?: number;
  @IsOptional() @IsInt() @Min(1) maximumQueueSize?: number;
  @IsOptional() @IsInt() @Min(0) @Max(MAX_TIMER_MS) shutdownTimeoutMs?: number;
}

export class JobManagerOptionsSchema {
  @IsOptional() @IsInt() @Min(0) @Max(100) defaultMaxRetries?: number;
  @IsOptional() @IsPositive() retryDelayBaseSeconds?: number;
  @IsOptional() @IsPositive() @Max(Math.floor(MAX_TIMER_MS / 1000)) maxRetryDelaySeconds?: number;
  @ValidateIf((_, value) => value !== null && value !== undefined) @IsInt() @Min(1) maxConcurrentJobs?: number | null;
  @IsOptional() @IsInt() @Min(100) @Max(MAX_TIMER_MS) jobClaimTimeoutMs?: number;
}

export class RecoveryOptionsSchema {
  @IsOptional() @IsBoolean() enableDistributedJobRecovery?: boolean;
  @IsOptional() @IsPositive() @Max(Math.floor(MAX_TIMER_MS / 1000)) recoveryCheckIntervalSeconds?: number;
  @IsOptional() @IsPositive() jobTimeoutMinutes?: number;
  @IsOptional() @IsInt() @Min(0) maximumRetries?: number;
}

export class RetentionOptionsSchema {
  @IsOptional() @IsPositive() completedTtlSeconds?: number;
  @IsOptional() @IsPositive() failedTtlSeconds?: number;
  @IsOptional() @IsBoolean() dropPayloadOnFinish?: boolean;
}

export class CaptureHeadersSchema {
  @IsOptional() @IsArray() @IsString({ each: true }) include?: string[];
  @IsOptional() @IsArray() @IsString({ each: true }) exclude?: string[];
}

export class HttpOptionsSchema {
  @ValidateIf((_, value) => value !== false && value !== undefined)
  @IsString()
  @Matches(/^\/?[A-Za-z0-9._~\-/]+$/, { message: 'jobsPath must be a URL path such as "jobs" or "api/jobs", or false' })
  jobsPath?: string | false;
  @IsOptional() @IsInt() @Min(0) retryAfterSeconds?: number;
  @IsOptional() @IsIn([200, 202]) pendingStatusCode?: 200 | 202;
  @IsOptional() @ValidateNested() @Type(() => CaptureHeadersSchema) captureHeaders?: CaptureHeadersSchema;
  @IsOptional() @ValidateNested() @Type(() => CaptureHeadersSchema) captureQueryParams?: CaptureHeadersSchema;
  @IsOptional() @IsBoolean() exposeErrorDetails?: boolean;
  @IsOptional() @IsInt() @Min(1) bodyLimitBytes?: number;
  @IsOptional() @IsInt() @Min(0) maxLongPolls?: number;
  @IsOptional() @IsInt() @Min(1) @Max(MAX_JSON_DEPTH_LIMIT) maxJsonDepth?: number;
}

export class DashboardOptionsSchema {
  @IsOptional() @IsBoolean() enabled?: boolean;
  @IsOptional()
  @IsString()
  @Matches(/^\/?[A-Za-z0-9._~\-/]+$/, { message: 'path must be a URL path such as "admin/jobs"' })
  path?: string;
  @IsOptional() @IsBoolean() readOnly?: boolean;
  @IsOptional()
  @IsArray()
  @IsGuard({ each: true, message: 'each guard must be a guard class or an object with a canActivate method' })
  guards?: unknown[];
  @IsOptional() @IsBoolean() hidePayloads?: boolean;
}

export class HealthOptionsSchema {
  @IsOptional() @IsInt() @Min(1) @Max(MAX_TIMER_MS) unhandledJobsAfterMs?: number;
}

export class AsyncEndpointsOptionsSchema {
  @IsOptional() @ValidateNested() @Type(() => WorkerOptionsSchema) worker?: WorkerOptionsSchema;
  @IsOptional() @ValidateNested() @Type(() => JobManagerOptionsSchema) jobManager?: JobManagerOptionsSchema;
  @IsOptional() @ValidateNested() @Type(() => RecoveryOptionsSchema) recovery?: RecoveryOptionsSchema;
  @IsOptional() @ValidateNested() @Type(() => RetentionOptionsSchema) retention?: RetentionOptionsSchema;
  @IsOptional() @ValidateNested() @Type(() => HttpOptionsSchema) http?: HttpOptionsSchema;
  @IsOptional() @ValidateNested() @Type(() => DashboardOptionsSchema) dashboard?: DashboardOptionsSchema;
  @IsOptional() @ValidateNested() @Type(() => HealthOptionsSchema) health?: HealthOptionsSchema;
  @IsOptional() @IsBoolean() failFastOnStoreUnavailable?: boolean;
}
