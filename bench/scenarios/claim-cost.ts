import { Redis } from 'ioredis';
import { RedisJobStore } from '../../lib/store/redis/redis-job-store.js';
import type { RedisProbe } from '../support/redis-probe.js';
import { median } from '../support/stats.js';

export interface ClaimCostConfig {
  /** Payload sizes to measure, in bytes of JSON. */
  payloadBytes: readonly number[];
  /** Jobs claimed (one per claim) at each size. */
  claims: number;
}

export interface ClaimCostRow {
  payloadBytes: number;
  /** Time Redis spent in one claim script, as its SLOWLOG records it. */
  medianMicros: number;
  maxMicros: number;
}

const WORKER_ID = 'bench-claim-cost';
/** Room for every claim and the commands each runs inside (SLOWLOG logs those too). */
const SLOWLOG_LENGTH = 10_000;
const NO_LOGS = { log: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * An array of small objects: the shape that costs a JSON parser the most per byte (the issue measured
 * a 1 MB array payload). `bytes` is the size of its JSON text, give or take one element.
 */
export function arrayPayload(bytes: number): { id: number; tag: string }[] {
  const element = { id: 1_000_000, tag: 'abcdefgh' };
  const count = Math.max(1, Math.floor(bytes / (JSON.stringify(element).length + 1)));
  return Array.from({ length: count }, (_, i) => ({ id: 1_000_000 + i, tag: 'abcdefgh' }));
}

/**
 * Redis time of the claim script by payload size: jobs are submitted through the store, then claimed
 * one per call, and the server's SLOWLOG (threshold 0, so every command is logged) gives each claim
 * script's duration inside Redis, with no network or client time in it. Claims must not depend on the
 * payload's size: Redis serves no one while a script runs.
 */
export async function claimCostRound(url: string, probe: RedisProbe, config: ClaimCostConfig): Promise<ClaimCostRow[]> {
  const admin = new Redis(url);
  // An empty store each round: the last round's jobs without its meta would read as 0.1.0 data.
  await probe.flush();
  const store = new RedisJobStore({ url, keyPrefix: '{bench-claim}', logger: NO_LOGS });
  await store.init();
  const [, threshold] = (await admin.config('GET', 'slowlog-log-slower-than')) as [string, string];
  const [, maxLen] = (await admin.config('GET', 'slowlog-max-len')) as [string, string];
  const rows: ClaimCostRow[] = [];
  try {
    for (const bytes of config.payloadBytes) {
      await probe.flush();
      const payload = arrayPayload(bytes);
      const now = Date.now();
      for (let i = 0; i < config.claims; i++) {
        const id = `claim-cost-${bytes}-${i}`;
        const job = { id, name: 'ClaimCost', payload, headers: {}, routeParams: {}, queryParams: {}, owner: null };
        await store.createJob(
          { ...job, idempotencyKey: null, fingerprint: '', traceContext: null, maxRetries: 0 },
          { now, maximumQueueSize: 1_000_000 },
        );
      }
      await admin.config('SET', 'slowlog-max-len', String(SLOWLOG_LENGTH));
      await admin.config('SET', 'slowlog-log-slower-than', '0');
      await admin.slowlog('RESET');
      for (let i = 0; i < config.claims; i++) {
        await store.claimDueJobs({
          workerId: WORKER_ID,
          names: ['ClaimCost'],
          limit: 1,
          leaseMs: 60_000,
          now: now + 1,
          maxConcurrentJobs: null,
        });
      }
      await admin.config('SET', 'slowlog-log-slower-than', threshold);
      const entries = (await admin.slowlog('GET', String(SLOWLOG_LENGTH))) as [number, number, number, string[]][];
      // The script's own calls (its HSET) are logged too: keep the EVAL/EVALSHA entries.
      const micros = entries
        .filter((entry) => /^eval/i.test(entry[3][0] ?? '') && entry[3].includes(WORKER_ID))
        .map((entry) => entry[2]);
      if (micros.length !== config.claims)
        throw new Error(`claim cost: ${micros.length} claims in SLOWLOG, expected ${config.claims}`);
      rows.push({ payloadBytes: bytes, medianMicros: median(micros), maxMicros: Math.max(...micros) });
    }
  } finally {
    await admin.config('SET', 'slowlog-log-slower-than', threshold);
    await admin.config('SET', 'slowlog-max-len', maxLen);
    await store.close();
    await admin.quit();
  }
  return rows;
}
