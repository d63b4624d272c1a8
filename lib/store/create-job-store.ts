import type { ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';
import { JobStore } from './job-store.js';
import { MemoryJobStore } from './memory/memory-job-store.js';

/** The store the options ask for: a JobStore instance as given, else memory or Redis. */
export async function createJobStore(options: ResolvedAsyncEndpointsOptions): Promise<JobStore> {
  const { store } = options;
  if (store instanceof JobStore) return store;
  if (store.type === 'memory') return new MemoryJobStore();
  // Loaded on demand: an app on the memory store never opens ioredis.
  const { RedisJobStore } = await import('./redis/redis-job-store.js');
  const { type: _type, ...config } = store;
  return new RedisJobStore(config);
}
