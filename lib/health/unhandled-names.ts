import { Inject, Injectable } from '@nestjs/common';
import { ASYNC_ENDPOINTS_OPTIONS } from '../async-endpoints.module-definition.js';
import type { ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';
import type { JobStats } from '../store/job-store.js';
import { libraryLogger } from '../observability/library-logger.js';

/**
 * The job names nobody runs: jobs of the name have waited `health.unhandledJobsAfterMs` or longer and
 * no live worker registers a handler for it. Health and metrics ask it with the stats they read; it
 * logs a warning once per name when the name becomes unhandled, and again only after it was handled.
 */
@Injectable()
export class UnhandledNames {
  private readonly logger = libraryLogger();
  /** The names unhandled at the last check: the current episodes. */
  private current = new Set<string>();

  constructor(@Inject(ASYNC_ENDPOINTS_OPTIONS) private readonly options: ResolvedAsyncEndpointsOptions) {}

  /** The unhandled names of `stats`, sorted; logs the ones that were not unhandled at the last check. */
  check(stats: JobStats): string[] {
    const afterMs = this.options.health.unhandledJobsAfterMs;
    const unhandled = Object.entries(stats.names)
      .filter(([, name]) => name.workers === 0 && (name.oldestWaitingAgeMs ?? -1) >= afterMs)
      .map(([name]) => name)
      .sort();
    for (const name of unhandled) {
      if (this.current.has(name)) continue;
      const { waiting, oldestWaitingAgeMs } = stats.names[name]!;
      this.logger.warn(
        `${waiting} job(s) of '${name}' wait, the oldest for ${oldestWaitingAgeMs} ms, and no worker registers a handler for '${name}': ` +
          `they stay Queued until a worker process with @AsyncHandler('${name}') runs (reported after health.unhandledJobsAfterMs = ${afterMs}).`,
      );
    }
    this.current = new Set(unhandled);
    return unhandled;
  }
}
