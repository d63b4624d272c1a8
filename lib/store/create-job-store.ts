import type { ResolvedAsyncEndpointsOptions } from '../options/async-endpoints-options.js';
import { JobStore } from './job-store.js';
import { MemoryJobStore } from './memory/memory-job-store.js';
import { RedisJobStore } from './redis/redis-job-store.js';

/** The store the options ask for: a JobStore instance as given, else memory or Redis. */
export function createJobStore(options: ResolvedAsyncEndpointsOptions): JobStore {
  const { store } = options;
  if (store instanceof JobStore) return store;
  if (store.type === 'memory') return new MemoryJobStore(store);
  const { type: _type, ...config } = store;
  return new RedisJobStore(config);
}
