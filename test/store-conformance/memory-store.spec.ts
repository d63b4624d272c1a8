import { MemoryJobStore } from '../../lib/store/memory/memory-job-store.js';
import { describeJobStoreConformance } from './job-store.conformance.js';

describeJobStoreConformance('memory', {
  async create() {
    const store = new MemoryJobStore();
    await store.init();
    return store;
  },
  async destroy(store) {
    await store.close();
  },
});
