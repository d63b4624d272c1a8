import { JobStatus } from '../../lib/job/index.js';
import type { Job } from '../../lib/job/index.js';
import type { JobStore, ListJobsOptions, NewJob, Retention, StoreEvent } from '../../lib/store/job-store.js';
import { createStored, eventually, newJob } from './job-store.conformance.js';

const retention: Retention = { completedTtlMs: 60_000, failedTtlMs: 120_000 };
const LEASE = 30_000;

/**
 * Store v2's part of the contract (issue 17): claims routed by name, stats per name with the workers
 * registered, listings in pages newest first, purge by name. Runs inside describeJobStoreConformance;
 * `idsTogether` gives new job ids that share a partition (for the cases that assert an order across jobs).
 */
export function describeRoutingConformance(current: () => JobStore, idsTogether: (count: number) => string[]): void {
  const create = (job: NewJob, now = Date.now()) => createStored(current(), job, { now, maximumQueueSize: 1_000_000 });
  const claim = (names: string[], limit = 10, now = Date.now()) =>
    current().claimDueJobs({ workerId: 'worker-r', names, limit, leaseMs: LEASE, now, maxConcurrentJobs: null });
  const ids = (jobs: { id: string }[]) => jobs.map((job) => job.id);

  /** Every page of a listing, following nextCursor; `between` runs after each page. */
  async function allPages(options: Omit<ListJobsOptions, 'cursor'>, between?: (page: number) => Promise<void>) {
    const jobs: Job[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 100; page++) {
      const result = await current().listJobs({ ...options, cursor });
      expect(result.jobs.length).toBeLessThanOrEqual(options.limit);
      jobs.push(...result.jobs);
      if (result.nextCursor === null) return jobs;
      cursor = result.nextCursor;
      await between?.(page);
    }
    throw new Error('the listing did not end within 100 pages');
  }

  describe('routing by name', () => {
    it('a claim naming X never returns a Y job; the Y job stays Queued, however long it waited', async () => {
      const now = Date.now();
      const y = newJob({ name: 'Y' });
      const x = newJob({ name: 'X' });
      await create(y, now - 3_600_000);
      await create(x, now);
      expect(ids((await claim(['X'], 10, now)).map((c) => c.job))).toEqual([x.id]);
      expect(await claim(['X'], 10, now)).toEqual([]);
      const report = await current().recoverJobs({
        now,
        maxInProgressMs: 1000,
        maxRecoveries: 0,
        lockMs: 1,
        retention,
      });
      expect(report?.exhausted).toEqual([]);
      expect(await current().getJob(y.id)).toMatchObject({ status: JobStatus.Queued, retryCount: 0, error: null });
      expect((await current().stats(now)).names.Y).toMatchObject({ waiting: 1, oldestWaitingAgeMs: 3_600_000 });
      expect(ids((await claim(['Y'], 10, now)).map((c) => c.job))).toEqual([y.id]);
    });

    it('a claim naming X and Y takes both names of one partition in due order, then submission order', async () => {
      const now = Date.now();
      const names = ['X', 'Y', 'X', 'Y', 'Z'];
      const [x1, y1, x2, y2, z] = idsTogether(5).map((id, i) => newJob({ id, name: names[i] }));
      await create(x2!, now - 10);
      await create(y2!, now - 10);
      await create(z!, now - 40);
      await create(y1!, now - 20);
      await create(x1!, now - 30);
      expect(ids((await claim(['X', 'Y'], 3, now)).map((c) => c.job))).toEqual([x1!.id, y1!.id, x2!.id]);
      expect(ids((await claim(['Y', 'X'], 10, now)).map((c) => c.job))).toEqual([y2!.id]);
      expect((await current().getJob(z!.id))!.status).toBe(JobStatus.Queued);
    });

    it("a lease carries the job's name, and a retry's job-available event names the job and its due time", async () => {
      const events: StoreEvent[] = [];
      const unsubscribe = current().subscribe((event) => events.push(event), ['job-available']);
      const input = newJob({ name: 'X' });
      await create(input);
      await eventually(() => events.some((e) => e.type === 'job-available' && e.name === 'X'));
      const [claimed] = await claim(['X']);
      expect(claimed!.lease).toMatchObject({ jobId: input.id, name: 'X' });
      const retryAt = Date.now() + 60_000;
      const error = { code: 'E', message: 'x' };
      expect(await current().failJob(claimed!.lease, error, { now: Date.now(), retryAt, retention })).toBe('scheduled');
      await eventually(() => events.some((e) => e.type === 'job-available' && e.dueAt === retryAt));
      unsubscribe();
      expect(events.find((e) => e.type === 'job-available' && e.dueAt === retryAt)).toEqual({
        type: 'job-available',
        name: 'X',
        dueAt: retryAt,
      });
    });
  });

  describe('stats per name and worker registrations', () => {
    it('counts waiting and in-progress jobs and the oldest due age per name', async () => {
      const now = Date.now();
      // The X jobs share a partition: the claim of one takes the one due first.
      const [x1, x2, x3] = idsTogether(3).map((id) => newJob({ id, name: 'X' }));
      await create(x1!, now - 500);
      await create(x2!, now - 100);
      await create(x3!, now - 50);
      await create(newJob({ name: 'Y' }), now - 10);
      const [running] = await claim(['X'], 1, now);
      const [retried] = await claim(['Y'], 1, now);
      await current().failJob(retried!.lease, { code: 'E', message: 'x' }, { now, retryAt: now + 5000, retention });
      const { names } = await current().stats(now);
      expect(running!.job.name).toBe('X');
      expect(names.X).toEqual({ waiting: 2, inProgress: 1, oldestWaitingAgeMs: 100, workers: 0 });
      // Scheduled counts as waiting but is not due yet.
      expect(names.Y).toEqual({ waiting: 1, inProgress: 0, oldestWaitingAgeMs: null, workers: 0 });
    });

    it('counts the live registrations naming each name, with names that have no job', async () => {
      const now = Date.now();
      await create(newJob({ name: 'X' }), now);
      await current().registerWorker({ workerId: 'w1', names: ['X'] }, { now, ttlMs: 10_000 });
      await current().registerWorker({ workerId: 'w2', names: ['X', 'Z'] }, { now, ttlMs: 10_000 });
      let { names } = await current().stats(now);
      expect(names.X).toEqual({ waiting: 1, inProgress: 0, oldestWaitingAgeMs: 0, workers: 2 });
      expect(names.Z).toEqual({ waiting: 0, inProgress: 0, oldestWaitingAgeMs: null, workers: 1 });
      // Registering again replaces the names.
      await current().registerWorker({ workerId: 'w1', names: ['Z'] }, { now, ttlMs: 10_000 });
      ({ names } = await current().stats(now));
      expect([names.X?.workers, names.Z?.workers]).toEqual([1, 2]);
      await current().unregisterWorker('w2');
      await current().unregisterWorker('never-registered');
      ({ names } = await current().stats(now));
      expect([names.X?.workers, names.Z?.workers]).toEqual([0, 1]);
    });

    it('stops counting a registration once its ttl ran out, unless it was renewed', async () => {
      const now = Date.now();
      await current().registerWorker({ workerId: 'short', names: ['X'] }, { now, ttlMs: 1000 });
      await current().registerWorker({ workerId: 'renewed', names: ['X'] }, { now, ttlMs: 1000 });
      expect((await current().stats(now + 999)).names.X?.workers).toBe(2);
      await current().registerWorker({ workerId: 'renewed', names: ['X'] }, { now: now + 900, ttlMs: 1000 });
      expect((await current().stats(now + 1000)).names.X?.workers).toBe(1);
      expect((await current().stats(now + 1900)).names.X?.workers ?? 0).toBe(0);
    });
  });

  describe('listJobs pages', () => {
    it('lists live jobs by when they entered the status and finished ones by when they finished, newest first', async () => {
      const now = Date.now();
      const [a, b, c] = [newJob(), newJob(), newJob()];
      await create(a, now - 30);
      await create(b, now - 20);
      await create(c, now - 10);
      expect(ids((await current().listJobs({ status: JobStatus.Queued, limit: 10 })).jobs)).toEqual([c.id, b.id, a.id]);
      const claimed = await claim(['Process'], 3, now);
      const leaseOf = (job: NewJob) => claimed.find((entry) => entry.job.id === job.id)!.lease;
      await current().completeJob(leaseOf(b), 1, { now: now + 1, retention });
      await current().completeJob(leaseOf(c), 1, { now: now + 2, retention });
      await current().completeJob(leaseOf(a), 1, { now: now + 3, retention });
      expect(ids((await current().listJobs({ status: JobStatus.Completed, limit: 10 })).jobs)).toEqual([
        a.id,
        c.id,
        b.id,
      ]);
    });

    it('pages through every job once, newest first, until nextCursor is null', async () => {
      const now = Date.now();
      const jobs = Array.from({ length: 7 }, () => newJob());
      for (const [i, job] of jobs.entries()) await create(job, now - 100 + i);
      const listed = await allPages({ status: JobStatus.Queued, limit: 3 });
      expect(ids(listed)).toEqual(ids(jobs).reverse());
    });

    it('never repeats a job nor skips one that stays in the status while jobs leave, come back and arrive', async () => {
      const now = Date.now();
      const stayers: NewJob[] = [];
      for (let i = 0; i < 9; i++) {
        const job = newJob({ name: i < 3 ? 'Leaver' : 'Process' });
        if (i >= 3) stayers.push(job);
        await create(job, now - 1000 + i);
      }
      const comesBack = newJob({ name: 'ComesBack' });
      await create(comesBack, now - 500);
      const listed = await allPages({ status: JobStatus.Queued, limit: 4 }, async (page) => {
        if (page !== 0) return;
        // After the first page (the newest jobs, comesBack among them): the oldest three finish, the
        // one listed already leaves and comes back, a new one arrives.
        for (const { lease } of await claim(['Leaver'], 3, now)) {
          await current().completeJob(lease, 1, { now: now + 1, retention });
        }
        const [again] = await claim(['ComesBack'], 1, now);
        await current().releaseJob(again!.lease, { now: now + 2, retention });
        await create(newJob(), now + 3);
      });
      expect(new Set(ids(listed)).size).toBe(listed.length);
      expect(ids(listed)).toContain(comesBack.id);
      for (const job of stayers) expect(ids(listed)).toContain(job.id);
    });

    it('filters by name and by owner, newest first, across pages', async () => {
      const now = Date.now();
      const created: NewJob[] = [];
      for (let i = 0; i < 12; i++) {
        const job = newJob({ name: i % 3 === 0 ? 'X' : 'Y', owner: i % 2 === 0 ? 'alice' : 'bob' });
        created.push(job);
        await create(job, now - 100 + i);
      }
      const newestFirst = [...created].reverse();
      const expected = (keep: (job: NewJob) => boolean) => ids(newestFirst.filter(keep));
      const queued = { status: JobStatus.Queued, limit: 2 } as const;
      expect(ids(await allPages({ ...queued, name: 'X' }))).toEqual(expected((job) => job.name === 'X'));
      expect(ids(await allPages({ ...queued, owner: 'alice' }))).toEqual(expected((job) => job.owner === 'alice'));
      expect(ids(await allPages({ ...queued, name: 'Y', owner: 'bob' }))).toEqual(
        expected((job) => job.name === 'Y' && job.owner === 'bob'),
      );
      expect(await allPages({ ...queued, name: 'Nobody' })).toEqual([]);
    });
  });

  describe('purgeJobs by name', () => {
    it('deletes only the finished jobs of the name it is given', async () => {
      const now = Date.now();
      const [x, y] = [newJob({ name: 'X' }), newJob({ name: 'Y' })];
      await create(x, now - 10_000);
      await create(y, now - 10_000);
      for (const { lease } of await claim(['X', 'Y'], 2, now - 10_000)) {
        await current().completeJob(lease, 1, { now: now - 10_000, retention });
      }
      const options = { status: JobStatus.Completed, finishedBefore: now, limit: 10, now } as const;
      expect(await current().purgeJobs({ ...options, name: 'X' })).toEqual([x.id]);
      expect(await current().getJob(x.id)).toBeNull();
      expect((await current().getJob(y.id))!.status).toBe(JobStatus.Completed);
    });
  });
}
