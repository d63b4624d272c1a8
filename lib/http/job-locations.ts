import { Inject, Injectable } from '@nestjs/common';
import { ApplicationConfig } from '@nestjs/core';
import { ASYNC_ENDPOINTS_OPTIONS } from '../async-endpoints.module-definition.js';
import type { ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';

/** Absolute paths of status resources, honouring the app's global prefix. */
@Injectable()
export class JobLocations {
  constructor(
    private readonly appConfig: ApplicationConfig,
    @Inject(ASYNC_ENDPOINTS_OPTIONS) private readonly options: ResolvedAsyncEndpointsOptions,
  ) {}

  /** `/<prefix>/<jobsPath>/<id>`, or undefined when no status controller is mounted. */
  of(jobId: string): string | undefined {
    const { jobsPath } = this.options.http;
    if (jobsPath === false) return undefined;
    const segments = [this.appConfig.getGlobalPrefix(), jobsPath, encodeURIComponent(jobId)]
      .map((segment) => segment.replace(/^\/+|\/+$/g, ''))
      .filter((segment) => segment.length > 0);
    return `/${segments.join('/')}`;
  }
}
