import { MemoryJobStore } from '../../lib/store/memory/memory-job-store.js';
import { median } from '../support/stats.js';
import { arrayPayload } from './claim-cost.js';

export interface MemoryCostConfig {
  /** Payload (and result) sizes to measure, in bytes of JSON. */
  payloadBytes: readonly number[];
  /** Jobs submitted, claimed and completed at each size. */
  jobs: number;
}

export interface MemoryCostRow {
  payloadBytes: number;
  /** One createJob with a payload of that size: copy, size (for the caps), index. */
  createMicros: number;
  /** One completeJob with a result of that size: copy, size, retention. */
  completeMicros: number;
}

const RETENTION = { completedTtlMs: 86_400_000, failedTtlMs: 604_800_000 };

/**
 * The memory store's own CPU per job by payload size, in process: no HTTP, no worker. Its caps size
 * every payload and result, so this is where that cost shows (issue 14 item 7).
 */
export async function memoryCostRound(config: MemoryCostConfig): Promise<MemoryCostRow[]> {
  const rows: MemoryCostRow[] = [];
  for (const bytes of config.payloadBytes) {
    const payload = arrayPayload(bytes);
    const store = new MemoryJobStore({ maxRetainedJobs: 1_000_000, maxRetainedBytes: Number.MAX_SAFE_INTEGER });
    const create: number[] = [];
    for (let i = 0; i < config.jobs; i++) {
      const job = {
        id: `memory-cost-${bytes}-${i}`,
        name: 'MemoryCost',
        payload,
        headers: {},
        routeParams: {},
        queryParams: {},
      };
      const started = process.hrtime.bigint();
      await store.createJob(
        { ...job, owner: null, idempotencyKey: null, fingerprint: '', traceContext: null, maxRetries: 0 },
        { now: Date.now(), maximumQueueSize: 1_000_000 },
      );
      create.push(Number(process.hrtime.bigint() - started) / 1000);
    }
    const claimed = await store.claimDueJobs({
      workerId: 'bench',
      names: ['MemoryCost'],
      limit: config.jobs,
      leaseMs: 600_000,
      now: Date.now(),
      maxConcurrentJobs: null,
    });
    const complete: number[] = [];
    for (const { lease } of claimed) {
      const started = process.hrtime.bigint();
      await store.completeJob(lease, payload, { now: Date.now(), retention: RETENTION });
      complete.push(Number(process.hrtime.bigint() - started) / 1000);
    }
    await store.close();
    rows.push({
      payloadBytes: bytes,
      createMicros: Math.round(median(create)),
      completeMicros: Math.round(median(complete)),
    });
  }
  return rows;
}
