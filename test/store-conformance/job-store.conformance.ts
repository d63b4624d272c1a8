import { randomUUID } from 'node:crypto';
import { fingerprintOf, JobStatus, type JsonValue } from '../../lib/job/index.js';
import type {
  CreateJobOptions,
  CreateJobResult,
  JobStore,
  NewJob,
  Retention,
  StoreEvent,
} from '../../lib/store/job-store.js';
import { describeRoutingConformance } from './routing.conformance.js';

/**
 * The JobStore contract, as one suite that every store runs unchanged.
 * `factory` returns a fresh, initialised, empty store; `teardown` closes it.
 */
export interface ConformanceTarget {
  create(): Promise<JobStore>;
  destroy(store: JobStore): Promise<void>;
  /**
   * `count` new job ids that the store keeps in one partition. Claims keep due-time, then submission
   * order within a partition only (partitions take turns), so a case that asserts the order of several
   * jobs gives them these ids. Without it: random ids (a store that is not partitioned).
   */
  idsInOnePartition?(count: number): string[];
}

/** `count` random job ids, for a store without partitions. */
function randomIds(count: number): string[] {
  return Array.from({ length: count }, () => randomUUID());
}

const retention: Retention = { completedTtlMs: 60_000, failedTtlMs: 120_000 };
const LEASE = 30_000;

export function newJob(overrides: Partial<NewJob> = {}): NewJob {
  const name = overrides.name ?? 'Process';
  const payload: JsonValue = overrides.payload ?? { data: 'hello' };
  return {
    id: randomUUID(),
    // As the service marks an id it made up; a partitioned store may draw another (docs/storage.md).
    idGenerated: overrides.id === undefined,
    name,
    payload,
    headers: { 'content-type': 'application/json' },
    routeParams: {},
    queryParams: {},
    owner: null,
    idempotencyKey: null,
    fingerprint: fingerprintOf(name, payload),
    traceContext: null,
    maxRetries: 3,
    ...overrides,
  };
}

/**
 * Creates `job` and, as a store may store a generated id as another (a partitioned store draws one in
 * the partition it batches into, or in its idempotency key's), sets `job.id` to the stored one.
 */
export async function createStored(store: JobStore, job: NewJob, options: CreateJobOptions): Promise<CreateJobResult> {
  const result = await store.createJob(job, options);
  if (result.outcome === 'created') job.id = result.job.id;
  return result;
}

export async function eventually(check: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export function describeJobStoreConformance(storeName: string, target: ConformanceTarget): void {
  describe(`JobStore conformance: ${storeName}`, () => {
    let store: JobStore;
    /** New job ids, and jobs, that share a partition: for the cases that assert an order across jobs. */
    const idsTogether = (count: number) => target.idsInOnePartition?.(count) ?? randomIds(count);
    const together = (count: number) => idsTogether(count).map((id) => newJob({ id }));
    const big = { now: 0, maximumQueueSize: 1_000_000 };
    // The cases go on with the id the store stored (createStored).
    const create = (job: NewJob, now = Date.now()) => createStored(store, job, { ...big, now });
    const claim = (limit = 10, now = Date.now(), extra: { maxConcurrentJobs?: number | null; leaseMs?: number } = {}) =>
      store.claimDueJobs({
        workerId: 'worker-a',
        names: ['Process'],
        limit,
        leaseMs: extra.leaseMs ?? LEASE,
        now,
        maxConcurrentJobs: extra.maxConcurrentJobs ?? null,
      });

    beforeEach(async () => {
      store = await target.create();
    });
    afterEach(async () => {
      await target.destroy(store);
    });

    describe('createJob and getJob', () => {
      it('stores a Queued job with its payload, headers and counters', async () => {
        const input = newJob({
          headers: { 'x-tenant': 't1' },
          routeParams: { id: '7' },
          queryParams: { q: ['a', 'b'] },
        });
        const now = Date.now();
        const result = await create(input, now);
        expect(result.outcome).toBe('created');
        const job = await store.getJob(input.id);
        expect(job).toMatchObject({
          id: input.id,
          name: 'Process',
          status: JobStatus.Queued,
          payload: { data: 'hello' },
          headers: { 'x-tenant': 't1' },
          routeParams: { id: '7' },
          queryParams: { q: ['a', 'b'] },
          retryCount: 0,
          maxRetries: 3,
          recoveryCount: 0,
          createdAt: now,
          lastUpdatedAt: now,
          startedAt: null,
          completedAt: null,
          result: null,
          error: null,
          progress: null,
          cancelRequested: false,
        });
      });

      it.each([
        ['null', null],
        ['a string', 'text'],
        ['a number', 0],
        ['false', false],
        ['an array', [1, 'two', null]],
      ] as const)('keeps a payload that is %s, through claim and completion', async (_kind, payload) => {
        const input = newJob({ payload: payload as JsonValue });
        expect((await create(input)).outcome).toBe('created');
        expect((await store.getJob(input.id))!.payload).toEqual(payload);
        const [claimed] = await claim(1);
        expect(claimed?.job).toMatchObject({ id: input.id, payload });
        expect(await store.completeJob(claimed!.lease, null, { now: Date.now(), retention })).toBe('completed');
        expect(await store.getJob(input.id)).toMatchObject({ status: JobStatus.Completed, payload });
      });

      it('returns null for an unknown id', async () => {
        expect(await store.getJob(randomUUID())).toBeNull();
      });

      it('hands out copies: changing a returned job changes nothing stored', async () => {
        const input = newJob();
        const { job } = (await create(input)) as unknown as { job: { payload: { data: string } } };
        job.payload.data = 'changed';
        const read = await store.getJob(input.id);
        (read!.payload as { data: string }).data = 'changed again';
        expect((await store.getJob(input.id))!.payload).toEqual({ data: 'hello' });
      });

      it('rejects a submit when Queued + Scheduled reach maximumQueueSize, storing nothing', async () => {
        for (let i = 0; i < 3; i++) {
          expect((await store.createJob(newJob(), { now: Date.now(), maximumQueueSize: 3 })).outcome).toBe('created');
        }
        const rejected = newJob();
        const result = await store.createJob(rejected, { now: Date.now(), maximumQueueSize: 3 });
        expect(result).toEqual({ outcome: 'queue-full', waiting: 3 });
        expect(await store.getJob(rejected.id)).toBeNull();
        // InProgress jobs do not count as waiting.
        await claim(1);
        expect((await store.createJob(newJob(), { now: Date.now(), maximumQueueSize: 3 })).outcome).toBe('created');
      });

      it('replays the same idempotency key with the same payload, and stores nothing new', async () => {
        const first = newJob({ idempotencyKey: 'order-1' });
        await create(first);
        const replay = await create(newJob({ idempotencyKey: 'order-1' }));
        expect(replay.outcome).toBe('replayed');
        expect((replay as { job: { id: string } }).job.id).toBe(first.id);
        expect((await store.stats(Date.now())).counts.Queued).toBe(1);
      });

      it('reports a conflict for the same key with another payload', async () => {
        const first = newJob({ idempotencyKey: 'order-2' });
        await create(first);
        const other = newJob({ idempotencyKey: 'order-2', payload: { data: 'other' } });
        const result = await create(other);
        expect(result.outcome).toBe('conflict');
        expect((result as { job: { id: string } }).job.id).toBe(first.id);
        expect(await store.getJob(other.id)).toBeNull();
      });

      it('scopes idempotency keys by endpoint name and by owner', async () => {
        await create(newJob({ idempotencyKey: 'k', owner: 'alice' }));
        expect((await create(newJob({ idempotencyKey: 'k', owner: 'bob' }))).outcome).toBe('created');
        expect((await create(newJob({ idempotencyKey: 'k', owner: 'alice', name: 'Other' }))).outcome).toBe('created');
        expect((await create(newJob({ idempotencyKey: 'k', owner: 'alice' }))).outcome).toBe('replayed');
      });

      it('treats a client-chosen job id as the idempotency key', async () => {
        const id = randomUUID();
        await create(newJob({ id }));
        expect((await create(newJob({ id }))).outcome).toBe('replayed');
        expect((await create(newJob({ id, name: 'Other' }))).outcome).toBe('conflict');
        expect((await create(newJob({ id, payload: { data: 'x' } }))).outcome).toBe('conflict');
        expect((await create(newJob({ id, owner: 'mallory' }))).outcome).toBe('conflict');
      });

      it('with both a chosen id and an idempotency key: a repeat of both replays the job, and another payload is a conflict', async () => {
        const id = randomUUID();
        expect((await create(newJob({ id, idempotencyKey: 'both-1' }))).outcome).toBe('created');
        expect(await create(newJob({ id, idempotencyKey: 'both-1' }))).toMatchObject({
          outcome: 'replayed',
          job: { id },
        });
        const other = await create(newJob({ id, idempotencyKey: 'both-1', payload: { data: 'other' } }));
        expect(other).toMatchObject({ outcome: 'conflict', job: { id } });
        expect((await store.stats(Date.now())).counts.Queued).toBe(1);
      });

      // With several partitions, a key sent with a chosen id lives in the id's partition (storage.md,
      // Partitions): a repeat must send the same id. On one partition the key alone finds its job.
      if (!target.idsInOnePartition) {
        it("with both a chosen id and an idempotency key: a repeat with the key and another chosen id, or none, gets the key's job", async () => {
          const id = randomUUID();
          await create(newJob({ id, idempotencyKey: 'both-2' }));
          expect(await create(newJob({ id: randomUUID(), idempotencyKey: 'both-2' }))).toMatchObject({
            outcome: 'replayed',
            job: { id },
          });
          expect(await create(newJob({ idempotencyKey: 'both-2' }))).toMatchObject({
            outcome: 'replayed',
            job: { id },
          });
          expect((await store.stats(Date.now())).counts.Queued).toBe(1);
        });
      }

      it('tells a replay from a conflict when the job was stored without a fingerprint', async () => {
        // The service skips the hash for a submission that cannot be replayed (no key, its own id);
        // a later submit that names that id still gets a replay for the same payload.
        const id = randomUUID();
        await create(newJob({ id, fingerprint: '' }));
        expect((await create(newJob({ id }))).outcome).toBe('replayed');
        expect((await create(newJob({ id, payload: { data: 'x' } }))).outcome).toBe('conflict');
        expect((await create(newJob({ id, payload: { data: 'x' }, fingerprint: '' }))).outcome).toBe('conflict');
        expect((await create(newJob({ id, fingerprint: '' }))).outcome).toBe('replayed');
      });

      it('never overwrites an existing job: a known id with a new idempotency key is not a new job', async () => {
        const id = randomUUID();
        await create(newJob({ id }));
        const other = await create(newJob({ id, name: 'Other', idempotencyKey: 'fresh-key' }));
        expect(other.outcome).toBe('conflict');
        expect(await store.getJob(id)).toMatchObject({ name: 'Process', status: JobStatus.Queued });
        expect((await store.stats(Date.now())).counts.Queued).toBe(1);
      });

      it('replays without regard to the queue limit', async () => {
        const first = newJob({ idempotencyKey: 'full' });
        await store.createJob(first, { now: Date.now(), maximumQueueSize: 1 });
        const replay = await store.createJob(newJob({ idempotencyKey: 'full' }), {
          now: Date.now(),
          maximumQueueSize: 1,
        });
        expect(replay.outcome).toBe('replayed');
      });
    });

    describe('claimDueJobs', () => {
      it('claims due jobs of one partition in due-time order, then submission order, up to the limit', async () => {
        const now = Date.now();
        const jobs = together(5);
        const ids = jobs.map((job) => job.id);
        for (let i = 0; i < 5; i++) await create(jobs[i]!, now + i);
        const first = await claim(3, now + 10);
        expect(first.map((c) => c.job.id)).toEqual(ids.slice(0, 3));
        const second = await claim(10, now + 10);
        expect(second.map((c) => c.job.id)).toEqual(ids.slice(3));
        expect(await claim(10, now + 10)).toEqual([]);
      });

      it('marks claimed jobs InProgress with a lease, worker and start time', async () => {
        const input = newJob();
        await create(input);
        const now = Date.now() + 5;
        const [claimed] = await claim(1, now);
        expect(claimed!.lease).toEqual({ jobId: input.id, name: 'Process', token: expect.any(String) });
        expect(claimed!.job).toMatchObject({
          id: input.id,
          status: JobStatus.InProgress,
          startedAt: now,
          workerId: 'worker-a',
          leaseExpiresAt: now + LEASE,
          payload: { data: 'hello' },
        });
        expect(await store.getJob(input.id)).toMatchObject({ status: JobStatus.InProgress, startedAt: now });
      });

      it('hands out every field of the job as stored: a claimed job reads the same as getJob', async () => {
        const input = newJob({
          headers: { 'content-type': 'application/json', 'x-tenant': 't-1' },
          routeParams: { orderId: '7' },
          queryParams: { tag: ['a', 'b'], mode: 'fast' },
          owner: 'alice',
          idempotencyKey: 'key-1',
          traceContext: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
          payload: { data: 'hello', list: [1, null, { deep: true }] },
        });
        await create(input);
        const now = Date.now();
        // Two failed attempts (retryCount 2, error, progress) and one take-back (recoveryCount 1): every
        // counter differs, so that values answered in the wrong order cannot pass.
        const [first] = await claim(1, now);
        await store.reportProgress(first!.lease, { step: 1 }, now);
        await store.failJob(
          first!.lease,
          { code: 'FLAKY', message: 'try again' },
          { now, retryAt: now + 1, retention },
        );
        const [second] = await claim(1, now + 2);
        await store.failJob(
          second!.lease,
          { code: 'FLAKY', message: 'again' },
          { now: now + 2, retryAt: now + 3, retention },
        );
        const [third] = await claim(1, now + 4, { leaseMs: 1000 });
        await store.recoverJobs({
          now: now + 1004,
          maxInProgressMs: 3_600_000,
          maxRecoveries: 5,
          lockMs: 1,
          retention,
        });
        const [fourth] = await claim(1, now + 1005);
        expect(second!.job).toMatchObject({ retryCount: 1, error: { code: 'FLAKY' }, retryDelayUntil: null });
        expect(third!.job).toMatchObject({ retryCount: 2, recoveryCount: 0 });
        expect(fourth!.job).toMatchObject({ retryCount: 2, recoveryCount: 1, progress: { step: 1 }, owner: 'alice' });
        expect(fourth!.job).toEqual(await store.getJob(input.id));
      });

      it('never hands one job to two concurrent claimers', async () => {
        const ids = new Set<string>();
        for (let i = 0; i < 60; i++) {
          const job = newJob();
          await create(job);
          ids.add(job.id);
        }
        const batches = await Promise.all(Array.from({ length: 12 }, () => claim(7)));
        const claimed = batches.flat().map((c) => c.job.id);
        expect(new Set(claimed).size).toBe(claimed.length);
        expect(claimed.length).toBe(60);
        expect(new Set(claimed)).toEqual(ids);
      });

      it('respects the cluster-wide maxConcurrentJobs cap', async () => {
        for (let i = 0; i < 5; i++) await create(newJob());
        expect(await claim(10, Date.now(), { maxConcurrentJobs: 2 })).toHaveLength(2);
        expect(await claim(10, Date.now(), { maxConcurrentJobs: 2 })).toHaveLength(0);
        expect(await claim(10, Date.now(), { maxConcurrentJobs: 3 })).toHaveLength(1);
      });

      it('does not claim a Scheduled job before its retry time', async () => {
        const input = newJob();
        await create(input);
        const now = Date.now();
        const [claimed] = await claim(1, now);
        await store.failJob(claimed!.lease, { code: 'E', message: 'boom' }, { now, retryAt: now + 1000, retention });
        expect(await claim(10, now + 999)).toEqual([]);
        const [again] = await claim(10, now + 1000);
        expect(again!.job).toMatchObject({
          id: input.id,
          retryCount: 1,
          status: JobStatus.InProgress,
          retryDelayUntil: null,
        });
      });

      it('returns nothing for a limit of zero', async () => {
        await create(newJob());
        expect(await claim(0)).toEqual([]);
      });
    });

    describe('fenced transitions', () => {
      it('completes a job with its result and clears the previous error', async () => {
        const input = newJob();
        await create(input);
        const now = Date.now();
        const [first] = await claim(1, now);
        await store.failJob(first!.lease, { code: 'E', message: 'boom' }, { now, retryAt: now, retention });
        const [second] = await claim(1, now + 1);
        expect(
          await store.completeJob(second!.lease, { processed: 'HELLO', list: [1, 2] }, { now: now + 2, retention }),
        ).toBe('completed');
        expect(await store.getJob(input.id)).toMatchObject({
          status: JobStatus.Completed,
          result: { processed: 'HELLO', list: [1, 2] },
          error: null,
          retryCount: 1,
          completedAt: now + 2,
        });
      });

      it('stores a null result for a handler that returned nothing', async () => {
        const input = newJob();
        await create(input);
        const [claimed] = await claim(1);
        await store.completeJob(claimed!.lease, null, { now: Date.now(), retention });
        expect((await store.getJob(input.id))!.result).toBeNull();
      });

      it('with dropPayloadOnFinish, completing keeps the result and drops payload, headers and query parameters; failing keeps them', async () => {
        const dropping = { ...retention, dropPayloadOnFinish: true };
        const captured = { headers: { 'x-tenant': 't1' }, queryParams: { q: 'a' }, payload: { data: 'secret' } };
        const completed = newJob(captured);
        const failed = newJob(captured);
        await create(completed);
        await create(failed);
        const now = Date.now();
        const [a, b] = await claim(2, now);
        const byId = new Map([a!, b!].map((claimed) => [claimed.job.id, claimed.lease]));
        expect(await store.completeJob(byId.get(completed.id)!, { ok: true }, { now, retention: dropping })).toBe(
          'completed',
        );
        await store.failJob(
          byId.get(failed.id)!,
          { code: 'E', message: 'x' },
          { now, retryAt: null, retention: dropping },
        );
        expect(await store.getJob(completed.id)).toMatchObject({
          status: JobStatus.Completed,
          result: { ok: true },
          payload: null,
          headers: {},
          queryParams: {},
        });
        expect(await store.getJob(failed.id)).toMatchObject({ status: JobStatus.Failed, ...captured });
      });

      it('without dropPayloadOnFinish, a completed job keeps payload, headers and query parameters', async () => {
        const input = newJob({ headers: { 'x-tenant': 't1' }, queryParams: { q: 'a' } });
        await create(input);
        const [claimed] = await claim(1);
        await store.completeJob(claimed!.lease, 1, { now: Date.now(), retention });
        expect(await store.getJob(input.id)).toMatchObject({
          payload: { data: 'hello' },
          headers: { 'x-tenant': 't1' },
          queryParams: { q: 'a' },
        });
      });

      it('rejects every transition made with a wrong or stale token', async () => {
        const input = newJob();
        await create(input);
        const [claimed] = await claim(1);
        const forged = { jobId: input.id, name: input.name, token: 'not-the-token' };
        const now = Date.now();
        expect(await store.completeJob(forged, 1, { now, retention })).toBe('lease-lost');
        expect(await store.failJob(forged, { code: 'E', message: 'x' }, { now, retryAt: null, retention })).toBe(
          'lease-lost',
        );
        expect(await store.releaseJob(forged, { now, retention })).toBe('lease-lost');
        expect(await store.reportProgress(forged, 50, now)).toBe(false);
        expect(await store.renewLeases([forged], { now, leaseMs: LEASE })).toEqual({
          lost: [input.id],
          cancelRequested: [],
        });
        expect(await store.getJob(input.id)).toMatchObject({ status: JobStatus.InProgress, progress: null });

        expect(await store.completeJob(claimed!.lease, 'done', { now, retention })).toBe('completed');
        expect(await store.completeJob(claimed!.lease, 'again', { now, retention })).toBe('lease-lost');
        expect((await store.getJob(input.id))!.result).toBe('done');
      });

      it('schedules a retry with the retry count and due time', async () => {
        const input = newJob();
        await create(input);
        const now = Date.now();
        const [claimed] = await claim(1, now);
        const outcome = await store.failJob(
          claimed!.lease,
          { code: 'FLAKY', message: 'try again' },
          { now, retryAt: now + 2000, retention },
        );
        expect(outcome).toBe('scheduled');
        expect(await store.getJob(input.id)).toMatchObject({
          status: JobStatus.Scheduled,
          retryCount: 1,
          retryDelayUntil: now + 2000,
          error: { code: 'FLAKY', message: 'try again' },
          workerId: null,
        });
      });

      it('fails a job for good when no retry is due', async () => {
        const input = newJob();
        await create(input);
        const now = Date.now();
        const [claimed] = await claim(1, now);
        expect(
          await store.failJob(claimed!.lease, { code: 'BAD', message: 'no' }, { now, retryAt: null, retention }),
        ).toBe('failed');
        expect(await store.getJob(input.id)).toMatchObject({
          status: JobStatus.Failed,
          error: { code: 'BAD', message: 'no' },
          completedAt: now,
          retryCount: 0,
        });
      });

      it('releases a job back to the queue without counting the attempt', async () => {
        const input = newJob();
        await create(input);
        const [claimed] = await claim(1);
        expect(await store.releaseJob(claimed!.lease, { now: Date.now(), retention })).toBe('released');
        expect(await store.getJob(input.id)).toMatchObject({
          status: JobStatus.Queued,
          retryCount: 0,
          recoveryCount: 0,
          startedAt: null,
          workerId: null,
        });
        const [again] = await claim(1);
        expect(again!.job.id).toBe(input.id);
        expect(await store.completeJob(claimed!.lease, 'stale', { now: Date.now(), retention })).toBe('lease-lost');
      });

      it('records progress under the lease', async () => {
        const input = newJob();
        await create(input);
        const [claimed] = await claim(1);
        expect(await store.reportProgress(claimed!.lease, { step: 2, of: 5 }, Date.now())).toBe(true);
        expect((await store.getJob(input.id))!.progress).toEqual({ step: 2, of: 5 });
      });

      it('renews leases in one call and reports the lost ones', async () => {
        const a = newJob();
        const b = newJob();
        await create(a);
        await create(b);
        const now = Date.now();
        const claimed = await claim(2, now, { leaseMs: 1000 });
        const leaseA = claimed.find((c) => c.job.id === a.id)!.lease;
        const leaseB = claimed.find((c) => c.job.id === b.id)!.lease;
        await store.completeJob(leaseB, null, { now, retention });
        const renewed = await store.renewLeases([leaseA, leaseB], { now: now + 500, leaseMs: 1000 });
        expect(renewed).toEqual({ lost: [b.id], cancelRequested: [] });
        expect((await store.getJob(a.id))!.leaseExpiresAt).toBe(now + 1500);
        // The renewed lease survives a sweep that would have taken the old one back.
        const report = await store.recoverJobs({
          now: now + 1200,
          maxInProgressMs: 3_600_000,
          maxRecoveries: 2,
          lockMs: 1,
          retention,
        });
        expect(report!.requeued).toEqual([]);
      });
    });

    describe('cancelJob', () => {
      it('cancels a Queued job at once; it is never claimed', async () => {
        const input = newJob();
        await create(input);
        const result = await store.cancelJob(input.id, { now: Date.now(), retention });
        expect(result.outcome).toBe('canceled');
        expect(await store.getJob(input.id)).toMatchObject({
          status: JobStatus.Canceled,
          completedAt: expect.any(Number),
        });
        expect(await claim(10)).toEqual([]);
      });

      it('cancels a Scheduled job at once', async () => {
        const input = newJob();
        await create(input);
        const now = Date.now();
        const [claimed] = await claim(1, now);
        await store.failJob(claimed!.lease, { code: 'E', message: 'x' }, { now, retryAt: now + 60_000, retention });
        expect((await store.cancelJob(input.id, { now, retention })).outcome).toBe('canceled');
        expect(await claim(10, now + 120_000)).toEqual([]);
      });

      it('requests cancellation of an InProgress job and tells its worker', async () => {
        const input = newJob();
        await create(input);
        const events: StoreEvent[] = [];
        const unsubscribe = store.subscribe((event) => events.push(event));
        const [claimed] = await claim(1);
        const result = await store.cancelJob(input.id, { now: Date.now(), retention });
        expect(result.outcome).toBe('cancel-requested');
        expect(await store.getJob(input.id)).toMatchObject({ status: JobStatus.InProgress, cancelRequested: true });
        await eventually(() => events.some((e) => e.type === 'cancel-requested' && e.jobId === input.id));
        expect(await store.renewLeases([claimed!.lease], { now: Date.now(), leaseMs: LEASE })).toEqual({
          lost: [],
          cancelRequested: [input.id],
        });
        // The aborted attempt ends the job Canceled, never in a retry.
        const outcome = await store.failJob(
          claimed!.lease,
          { code: 'ABORT_ERROR', message: 'aborted' },
          { now: Date.now(), retryAt: Date.now(), retention },
        );
        expect(outcome).toBe('canceled');
        expect((await store.getJob(input.id))!.status).toBe(JobStatus.Canceled);
        unsubscribe();
      });

      it('ends a released job Canceled when its cancellation was requested', async () => {
        const input = newJob();
        await create(input);
        const [claimed] = await claim(1);
        await store.cancelJob(input.id, { now: Date.now(), retention });
        expect(await store.releaseJob(claimed!.lease, { now: Date.now(), retention })).toBe('canceled');
        expect((await store.getJob(input.id))!.status).toBe(JobStatus.Canceled);
      });

      it('answers already-terminal for a finished job and not-found for an unknown one', async () => {
        const input = newJob();
        await create(input);
        const [claimed] = await claim(1);
        await store.completeJob(claimed!.lease, 1, { now: Date.now(), retention });
        const result = await store.cancelJob(input.id, { now: Date.now(), retention });
        expect(result.outcome).toBe('already-terminal');
        expect((await store.getJob(input.id))!.status).toBe(JobStatus.Completed);
        expect(await store.cancelJob(randomUUID(), { now: Date.now(), retention })).toEqual({ outcome: 'not-found' });
      });
    });

    describe('recoverJobs', () => {
      const sweep = (now: number, maxRecoveries = 2, maxInProgressMs = 3_600_000) =>
        store.recoverJobs({ now, maxInProgressMs, maxRecoveries, lockMs: 1, retention });

      it('takes back a job whose lease expired, and fences out the old worker', async () => {
        const input = newJob();
        await create(input);
        const now = Date.now();
        const [claimed] = await claim(1, now, { leaseMs: 1000 });
        expect((await sweep(now + 999))!.requeued).toEqual([]);
        const report = await sweep(now + 1000);
        expect(report!.requeued).toEqual([input.id]);
        expect(await store.getJob(input.id)).toMatchObject({
          status: JobStatus.Queued,
          recoveryCount: 1,
          retryCount: 0,
        });
        expect(await store.completeJob(claimed!.lease, 'late', { now: now + 1001, retention })).toBe('lease-lost');
        const [again] = await claim(1, now + 1002);
        expect(again!.job).toMatchObject({ id: input.id, recoveryCount: 1 });
        expect(await store.completeJob(again!.lease, 'fresh', { now: now + 1003, retention })).toBe('completed');
        expect((await store.getJob(input.id))!.result).toBe('fresh');
      });

      it('takes back a job InProgress past maxInProgressMs even with a live lease', async () => {
        const input = newJob();
        await create(input);
        const now = Date.now();
        const [claimed] = await claim(1, now, { leaseMs: 1000 });
        await store.renewLeases([claimed!.lease], { now: now + 900, leaseMs: 10_000 });
        const report = await sweep(now + 5000, 2, 5000);
        expect(report!.requeued).toEqual([input.id]);
      });

      it('puts a job taken back or released ahead of the waiting jobs, leaving the oldest waiting age as it was', async () => {
        const now = Date.now();
        const [recovered, released, waiting, later] = together(4);
        await create(recovered!, now);
        await create(released!, now);
        const [recoveredClaim, releasedClaim] = await claim(2, now, { leaseMs: 1000 });
        await create(waiting!, now + 10);
        await create(later!, now + 500);
        expect(await store.releaseJob(releasedClaim!.lease, { now: now + 600, retention })).toBe('released');
        expect((await sweep(now + 1000))!.requeued).toEqual([recoveredClaim!.lease.jobId]);
        // They were due before anything submitted since; the job due the longest still dates from now + 10.
        expect((await store.stats(now + 1000)).oldestWaitingAgeMs).toBe(990);
        expect((await claim(10, now + 1000)).map((c) => c.job.id)).toEqual([
          recovered!.id,
          released!.id,
          waiting!.id,
          later!.id,
        ]);
      });

      it('makes a job taken back or released due at once when the head of the queue is not due yet', async () => {
        const now = Date.now();
        const [scheduled, recovered] = together(2);
        await create(scheduled!, now);
        await create(recovered!, now);
        const [scheduledClaim] = await claim(1, now);
        await store.failJob(
          scheduledClaim!.lease,
          { code: 'E', message: 'x' },
          { now, retryAt: now + 5000, retention },
        );
        await claim(1, now, { leaseMs: 100 });
        expect((await sweep(now + 100))!.requeued).toEqual([recovered!.id]);
        expect((await store.stats(now + 100)).oldestWaitingAgeMs).toBe(0);
        expect((await claim(10, now + 100)).map((c) => c.job.id)).toEqual([recovered!.id]);
      });

      it('fails a job with JOB_RECOVERY_EXHAUSTED after maxRecoveries take-backs', async () => {
        const input = newJob();
        await create(input);
        let now = Date.now();
        for (let i = 0; i < 2; i++) {
          await claim(1, now, { leaseMs: 10 });
          now += 20;
          expect((await sweep(now))!.requeued).toEqual([input.id]);
        }
        await claim(1, now, { leaseMs: 10 });
        now += 20;
        const report = await sweep(now);
        expect(report!.exhausted).toEqual([input.id]);
        expect(await store.getJob(input.id)).toMatchObject({
          status: JobStatus.Failed,
          recoveryCount: 2,
          error: { code: 'JOB_RECOVERY_EXHAUSTED', message: expect.stringContaining('recovery.maximumRetries') },
        });
      });

      it('ends a job Canceled when its worker died after cancellation was requested', async () => {
        const input = newJob();
        await create(input);
        const now = Date.now();
        await claim(1, now, { leaseMs: 10 });
        await store.cancelJob(input.id, { now, retention });
        expect((await sweep(now + 20))!.canceled).toEqual([input.id]);
        expect((await store.getJob(input.id))!.status).toBe(JobStatus.Canceled);
      });

      it('lets one sweep per lock period do the work', async () => {
        const now = Date.now();
        const options = { now, maxInProgressMs: 3_600_000, maxRecoveries: 2, lockMs: 10_000, retention };
        expect(await store.recoverJobs(options)).not.toBeNull();
        expect(await store.recoverJobs({ ...options, now: now + 5000 })).toBeNull();
        expect(await store.recoverJobs({ ...options, now: now + 10_001 })).not.toBeNull();
      });
    });

    describe('stats, listing and retention', () => {
      it('counts jobs per status and the age of the oldest due job', async () => {
        const now = Date.now();
        const jobs = together(4);
        for (let i = 0; i < 4; i++) await create(jobs[i]!, now - 1000 + i);
        const [a, b, c] = await claim(3, now);
        await store.completeJob(a!.lease, 1, { now, retention });
        await store.failJob(b!.lease, { code: 'E', message: 'x' }, { now, retryAt: now + 60_000, retention });
        expect(c).toBeDefined();
        const stats = await store.stats(now);
        expect(stats.counts).toEqual({ Queued: 1, Scheduled: 1, InProgress: 1, Completed: 1, Failed: 0, Canceled: 0 });
        expect(stats.waiting).toBe(2);
        expect(stats.inProgress).toBe(1);
        expect(stats.oldestWaitingAgeMs).toBe(1000 - 3);
      });

      it('reports no oldest age when nothing is due', async () => {
        expect((await store.stats(Date.now())).oldestWaitingAgeMs).toBeNull();
      });

      it('lists jobs by status, newest first', async () => {
        const [first, second] = together(2);
        await create(first!, Date.now());
        await create(second!, Date.now() + 1);
        expect((await store.listJobs({ status: JobStatus.Queued, limit: 10 })).jobs.map((j) => j.id)).toEqual([
          second!.id,
          first!.id,
        ]);
        expect((await store.listJobs({ status: JobStatus.Queued, limit: 1 })).jobs).toHaveLength(1);
        const [claimed] = await claim(1, Date.now() + 5);
        await store.failJob(claimed!.lease, { code: 'E', message: 'x' }, { now: Date.now(), retryAt: null, retention });
        expect((await store.listJobs({ status: JobStatus.Failed, limit: 10 })).jobs.map((j) => j.id)).toEqual([
          first!.id,
        ]);
      });

      it('drops terminal jobs and their idempotency keys after the retention period', async () => {
        const input = newJob({ idempotencyKey: 'short-lived' });
        await create(input);
        const [claimed] = await claim(1);
        const shortRetention = { completedTtlMs: 150, failedTtlMs: 150 };
        await store.completeJob(claimed!.lease, 1, { now: Date.now(), retention: shortRetention });
        expect(await store.getJob(input.id)).not.toBeNull();
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(await store.getJob(input.id)).toBeNull();
        expect((await store.stats(Date.now())).counts.Completed).toBe(0);
        expect((await create(newJob({ idempotencyKey: 'short-lived' }))).outcome).toBe('created');
      });

      it('keeps Failed jobs for the failed retention, Completed for the completed one', async () => {
        const done = newJob();
        const failed = newJob();
        await create(done);
        await create(failed);
        const claimed = await claim(2);
        const mixed = { completedTtlMs: 100, failedTtlMs: 60_000 };
        await store.completeJob(claimed.find((c) => c.job.id === done.id)!.lease, 1, {
          now: Date.now(),
          retention: mixed,
        });
        await store.failJob(
          claimed.find((c) => c.job.id === failed.id)!.lease,
          { code: 'E', message: 'x' },
          { now: Date.now(), retryAt: null, retention: mixed },
        );
        await new Promise((resolve) => setTimeout(resolve, 250));
        expect(await store.getJob(done.id)).toBeNull();
        expect((await store.getJob(failed.id))!.status).toBe(JobStatus.Failed);
      });
    });

    describe('retryJob (operator retry)', () => {
      /** A job that failed for good after `attempts` attempts (retryCount attempts - 1). */
      const failedJob = async (input: NewJob, attempts = 2) => {
        await create(input);
        for (let attempt = 1; attempt <= attempts; attempt++) {
          const [claimed] = await claim(1);
          const last = attempt === attempts;
          await store.failJob(
            claimed!.lease,
            { code: 'DOWNSTREAM', message: `attempt ${attempt}` },
            { now: Date.now(), retryAt: last ? null : Date.now(), retention },
          );
        }
      };

      it('puts a Failed job back in the queue with a fresh attempt budget, its error kept until the next attempt', async () => {
        const input = newJob();
        await failedJob(input);
        const events: StoreEvent[] = [];
        const unsubscribe = store.subscribe((event) => events.push(event));
        const now = Date.now();
        const result = await store.retryJob(input.id, { now });
        expect(result.outcome).toBe('requeued');
        const expected = {
          id: input.id,
          status: JobStatus.Queued,
          retryCount: 0,
          recoveryCount: 0,
          error: { code: 'DOWNSTREAM', message: 'attempt 2' },
          result: null,
          startedAt: null,
          completedAt: null,
          lastUpdatedAt: now,
          retryDelayUntil: null,
          workerId: null,
          payload: { data: 'hello' },
        };
        expect((result as { job: unknown }).job).toMatchObject(expected);
        expect(await store.getJob(input.id)).toMatchObject(expected);
        await eventually(() => events.some((e) => e.type === 'job-available'));
        unsubscribe();
        expect((await store.stats(now)).counts).toMatchObject({ Queued: 1, Failed: 0 });
        expect((await store.listJobs({ status: JobStatus.Queued, limit: 10 })).jobs.map((j) => j.id)).toEqual([
          input.id,
        ]);
        expect((await store.listJobs({ status: JobStatus.Failed, limit: 10 })).jobs).toEqual([]);

        const [claimed] = await claim(1, now + 1);
        expect(claimed!.job).toMatchObject({ id: input.id, retryCount: 0, recoveryCount: 0 });
        expect(await store.completeJob(claimed!.lease, 'second life', { now: now + 2, retention })).toBe('completed');
        expect(await store.getJob(input.id)).toMatchObject({
          status: JobStatus.Completed,
          result: 'second life',
          error: null,
        });
      });

      it('puts a Canceled job back, without its cancellation request', async () => {
        const input = newJob();
        await create(input);
        const [claimed] = await claim(1);
        await store.cancelJob(input.id, { now: Date.now(), retention });
        expect(await store.releaseJob(claimed!.lease, { now: Date.now(), retention })).toBe('canceled');
        const result = await store.retryJob(input.id, { now: Date.now() });
        expect(result.outcome).toBe('requeued');
        expect(await store.getJob(input.id)).toMatchObject({ status: JobStatus.Queued, cancelRequested: false });
        const [again] = await claim(1);
        expect(await store.renewLeases([again!.lease], { now: Date.now(), leaseMs: LEASE })).toEqual({
          lost: [],
          cancelRequested: [],
        });
      });

      it('resets the take-back count of a job failed with JOB_RECOVERY_EXHAUSTED', async () => {
        const input = newJob();
        await create(input);
        let now = Date.now();
        await claim(1, now, { leaseMs: 10 });
        now += 20;
        await store.recoverJobs({ now, maxInProgressMs: 3_600_000, maxRecoveries: 0, lockMs: 1, retention });
        expect(await store.getJob(input.id)).toMatchObject({
          status: JobStatus.Failed,
          error: { code: 'JOB_RECOVERY_EXHAUSTED' },
        });
        expect((await store.retryJob(input.id, { now: now + 1 })).outcome).toBe('requeued');
        expect(await store.getJob(input.id)).toMatchObject({
          status: JobStatus.Queued,
          recoveryCount: 0,
          retryCount: 0,
        });
      });

      it('orders a retried job as a new submission', async () => {
        const [retried, waiting] = together(2);
        await failedJob(retried!, 1);
        const now = Date.now();
        await create(waiting!, now);
        await store.retryJob(retried!.id, { now });
        expect((await claim(10, now)).map((c) => c.job.id)).toEqual([waiting!.id, retried!.id]);
      });

      it('changes nothing for a job that is not Failed or Canceled, and answers not-found for an unknown id', async () => {
        const [done, running, queued] = together(3);
        await create(done!);
        await create(running!);
        await create(queued!);
        const [doneClaim, runningClaim] = await claim(2);
        await store.completeJob(doneClaim!.lease, 1, { now: Date.now(), retention });
        for (const [input, status] of [
          [queued!, JobStatus.Queued],
          [running!, JobStatus.InProgress],
          [done!, JobStatus.Completed],
        ] as const) {
          const result = await store.retryJob(input.id, { now: Date.now() });
          expect(result).toMatchObject({ outcome: 'not-retryable', job: { id: input.id, status } });
          expect((await store.getJob(input.id))!.status).toBe(status);
        }
        expect(await store.completeJob(runningClaim!.lease, 2, { now: Date.now(), retention })).toBe('completed');
        expect(await store.retryJob(randomUUID(), { now: Date.now() })).toEqual({ outcome: 'not-found' });
      });

      it('keeps a retried job past the retention it had, with its idempotency key', async () => {
        const input = newJob({ idempotencyKey: 'retried-key' });
        await create(input);
        const [claimed] = await claim(1);
        await store.failJob(
          claimed!.lease,
          { code: 'E', message: 'x' },
          { now: Date.now(), retryAt: null, retention: { completedTtlMs: 150, failedTtlMs: 150 } },
        );
        expect((await store.retryJob(input.id, { now: Date.now() })).outcome).toBe('requeued');
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect((await store.getJob(input.id))!.status).toBe(JobStatus.Queued);
        const replay = await create(newJob({ idempotencyKey: 'retried-key' }));
        expect(replay).toMatchObject({ outcome: 'replayed', job: { id: input.id } });
      });
    });

    describe('purgeJobs', () => {
      const finishAt = async (input: NewJob, how: 'complete' | 'fail', now: number) => {
        await create(input, now);
        const [claimed] = await claim(1, now);
        if (how === 'complete') await store.completeJob(claimed!.lease, 1, { now, retention });
        else await store.failJob(claimed!.lease, { code: 'E', message: 'x' }, { now, retryAt: null, retention });
      };

      it('deletes jobs of one terminal status finished before the cutoff, and nothing else', async () => {
        const now = Date.now();
        const oldDone = newJob();
        const newDone = newJob();
        const oldFailed = newJob();
        const queued = newJob();
        await finishAt(oldDone, 'complete', now - 10_000);
        await finishAt(newDone, 'complete', now - 1000);
        await finishAt(oldFailed, 'fail', now - 10_000);
        await create(queued, now - 10_000);
        const purged = await store.purgeJobs({
          status: JobStatus.Completed,
          finishedBefore: now - 5000,
          limit: 100,
          now,
        });
        expect(purged).toEqual([oldDone.id]);
        expect(await store.getJob(oldDone.id)).toBeNull();
        expect((await store.getJob(newDone.id))!.status).toBe(JobStatus.Completed);
        expect((await store.getJob(oldFailed.id))!.status).toBe(JobStatus.Failed);
        expect((await store.getJob(queued.id))!.status).toBe(JobStatus.Queued);
        expect((await store.stats(now)).counts).toMatchObject({ Completed: 1, Failed: 1, Queued: 1 });
        expect((await store.listJobs({ status: JobStatus.Completed, limit: 10 })).jobs.map((j) => j.id)).toEqual([
          newDone.id,
        ]);
        expect(await store.purgeJobs({ status: JobStatus.Failed, finishedBefore: now, limit: 100, now })).toEqual([
          oldFailed.id,
        ]);
      });

      it('deletes at most limit jobs per call', async () => {
        const now = Date.now();
        for (let i = 0; i < 5; i++) await finishAt(newJob(), 'complete', now - 10_000 + i);
        expect(await store.purgeJobs({ status: JobStatus.Completed, finishedBefore: now, limit: 2, now })).toHaveLength(
          2,
        );
        expect(
          await store.purgeJobs({ status: JobStatus.Completed, finishedBefore: now, limit: 10, now }),
        ).toHaveLength(3);
        expect((await store.stats(now)).counts.Completed).toBe(0);
      });

      it('with dryRun returns the ids it would delete, within limit, and deletes nothing', async () => {
        const now = Date.now();
        const old = [newJob(), newJob(), newJob()];
        for (const [i, input] of old.entries()) await finishAt(input, 'complete', now - 10_000 + i);
        const recent = newJob();
        await finishAt(recent, 'complete', now - 1000);
        const dryRun = { status: JobStatus.Completed, finishedBefore: now - 5000, now, dryRun: true } as const;
        expect((await store.purgeJobs({ ...dryRun, limit: 100 })).sort()).toEqual(old.map((job) => job.id).sort());
        expect(await store.purgeJobs({ ...dryRun, limit: 2 })).toHaveLength(2);
        expect((await store.stats(now)).counts.Completed).toBe(4);
        for (const input of old) expect((await store.getJob(input.id))!.status).toBe(JobStatus.Completed);
      });

      it('frees the idempotency keys of the jobs it deletes', async () => {
        const now = Date.now();
        const input = newJob({ idempotencyKey: 'purged-key' });
        await finishAt(input, 'complete', now - 10_000);
        await store.purgeJobs({ status: JobStatus.Completed, finishedBefore: now, limit: 10, now });
        const again = newJob({ idempotencyKey: 'purged-key' });
        expect((await create(again)).outcome).toBe('created');
        expect((await store.getJob(again.id))!.status).toBe(JobStatus.Queued);
      });

      it('refuses a status that is not terminal', async () => {
        const input = newJob();
        await create(input, Date.now() - 10_000);
        const options = {
          status: 'Queued',
          finishedBefore: Date.now(),
          limit: 10,
          now: Date.now(),
        } as unknown as Parameters<JobStore['purgeJobs']>[0];
        await expect(store.purgeJobs(options)).rejects.toThrow(/Completed, Failed or Canceled/);
        expect((await store.getJob(input.id))!.status).toBe(JobStatus.Queued);
      });
    });

    describe('events and health', () => {
      it('announces new work and finished jobs', async () => {
        const events: StoreEvent[] = [];
        const unsubscribe = store.subscribe((event) => events.push(event));
        const input = newJob();
        await create(input);
        await eventually(() => events.some((e) => e.type === 'job-available'));
        const [claimed] = await claim(1);
        await store.completeJob(claimed!.lease, 1, { now: Date.now(), retention });
        await eventually(() => events.some((e) => e.type === 'job-finished' && e.jobId === input.id));
        unsubscribe();
        const count = events.length;
        await create(newJob());
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect(events).toHaveLength(count);
      });

      it('announces a job that is due again after a release or a recovery', async () => {
        // Workers claim on these events: a freed slot alone does not make them claim.
        const events: StoreEvent[] = [];
        const unsubscribe = store.subscribe((event) => events.push(event), ['job-available']);
        await create(newJob());
        await create(newJob());
        await eventually(() => events.length > 0);
        const [released, recovered] = await claim(2, Date.now(), { leaseMs: 1 });
        events.length = 0;
        await store.releaseJob(released!.lease, { now: Date.now(), retention });
        await eventually(() => events.length > 0);
        events.length = 0;
        const report = await store.recoverJobs({
          now: Date.now() + 10,
          maxInProgressMs: 3_600_000,
          maxRecoveries: 3,
          lockMs: 1000,
          retention,
        });
        expect(report?.requeued).toEqual([recovered!.job.id]);
        await eventually(() => events.length > 0);
        unsubscribe();
        expect(events.every((event) => event.type === 'job-available')).toBe(true);
      });

      it('answers ping', async () => {
        await expect(store.ping()).resolves.toBeUndefined();
      });
    });

    describeRoutingConformance(() => store, idsTogether);
  });
}
