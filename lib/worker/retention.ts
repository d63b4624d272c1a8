import type { ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';
import type { Retention } from '../store/job-store.js';

export function retentionOf(options: ResolvedAsyncEndpointsOptions): Retention {
  return {
    completedTtlMs: options.retention.completedTtlSeconds * 1000,
    failedTtlMs: options.retention.failedTtlSeconds * 1000,
    dropPayloadOnFinish: options.retention.dropPayloadOnFinish,
  };
}
