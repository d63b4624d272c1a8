import { Inject, Injectable } from '@nestjs/common';
import { ApplicationConfig } from '@nestjs/core';
import { ASYNC_ENDPOINTS_OPTIONS } from '../async-endpoints.module-definition.js';
import type { ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';

/** Absolute paths of status resources, honouring the app's global prefix. */
@Injectable()
export class JobLocations {
  /** `/<prefix>/<jobsPath>` for the global prefix it was built for (which may change until the app listens). */
  private base: { prefix: string; path: string } | undefined;

  constructor(
    private readonly appConfig: ApplicationConfig,
    @Inject(ASYNC_ENDPOINTS_OPTIONS) private readonly options: ResolvedAsyncEndpointsOptions,
  ) {}

  /** `/<prefix>/<jobsPath>/<id>`, or undefined when no status controller is mounted. */
  of(jobId: string): string | undefined {
    const { jobsPath } = this.options.http;
    if (jobsPath === false) return undefined;
    const prefix = this.appConfig.getGlobalPrefix();
    if (this.base?.prefix !== prefix) {
      const segments = [prefix, jobsPath]
        .map((segment) => segment.replace(/^\/+|\/+$/g, ''))
        .filter((segment) => segment.length > 0);
      this.base = { prefix, path: `/${segments.join('/')}` };
    }
    // An encoded id has no slashes to trim.
    const id = encodeURIComponent(jobId);
    if (id.length === 0) return this.base.path;
    return this.base.path === '/' ? `/${id}` : `${this.base.path}/${id}`;
  }
}
