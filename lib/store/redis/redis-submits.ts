import { randomUUID } from 'node:crypto';
import { newQueuedJob } from '../../job/job-records.js';
import type { Job } from '../../job/index.js';
import { isReplayOf, type CreateJobOptions, type CreateJobResult, type NewJob } from '../job-store.js';
import { batchItem, type CreateReply, type RedisCalls } from './redis-calls.js';
import type { RedisClaims } from './redis-claims.js';
import type { StoreLogger } from './redis-connections.js';
import { decodeJobReply, decodeJobReplyLeniently, encodeQueuedJob, UnreadableJobError } from './redis-job-codec.js';
import { idempotencyDigest, type StoreKeys } from './redis-keys.js';
import type { PartitionCounts } from './redis-partition-counts.js';

/** Tries of a submission whose idempotency key kept naming another undeclared job. */
const MAPPED_TRIES = 3;
/**
 * Ids drawn for one partition that fell in another are kept for a later submission there, this many at
 * most: enough for a moment of 100 submissions to one partition (the others' moments refill it). At 32,
 * such moments cost 8 draws per id (a random id and its crc32 each), at 128 two (simulated: 12
 * partitions, moments of 100 taking turns; 1.9 draws for moments of 10 to 100). 12 partitions keep at
 * most 1,536 ids.
 */
const SPARE_IDS_PER_PARTITION = 128;

/**
 * The Redis store's submit: the job's id and partition, its sequence number with several partitions,
 * and createJobs.lua (batched per partition by RedisCalls).
 */
export class RedisSubmits {
  private lastSequence = 0;
  /** The partition that the generated ids of this moment's submissions go to; null between moments. */
  private batchPartition: number | null = null;
  /** Per partition, the generated ids drawn into it by this process: the next moment goes to the fewest. */
  private readonly drawnInto: number[];
  /** Where the search for the fewest starts (it moves on each moment), from a random partition per process. */
  private nextBatchPartition: number;
  /** Per partition, random ids drawn for another partition that fell in this one. */
  private readonly spareIds: string[][];

  constructor(
    private readonly calls: RedisCalls,
    private readonly keys: StoreKeys,
    private readonly counts: PartitionCounts,
    private readonly claims: RedisClaims,
    private readonly logger: StoreLogger,
    private readonly getJob: (id: string) => Promise<Job | null>,
  ) {
    this.spareIds = keys.partitions.map(() => []);
    this.drawnInto = keys.partitions.map(() => 0);
    this.nextBatchPartition = Math.floor(Math.random() * keys.partitions.length);
  }

  async createJob(input: NewJob, options: CreateJobOptions): Promise<CreateJobResult> {
    const digest = input.idempotencyKey === null ? '' : idempotencyDigest(input);
    const id = this.idFor(input, digest);
    const job = newQueuedJob(id === input.id ? input : { ...input, id }, options.now);
    const index = this.keys.partitionIndexOf(id);
    const partition = this.keys.partitions[index]!;
    const queueLimit =
      options.maximumQueueSize - (await this.counts.othersWaiting(index, options.now, options.maximumQueueSize));
    const fields = encodeQueuedJob(job);
    const seq = this.nextSequence();
    const submit = (mappedId: string) =>
      this.calls.create(
        index,
        batchItem([partition.job(id), partition.waiting(job.name), partition.job(mappedId || id)], job.name, [
          id,
          job.name,
          String(options.now),
          String(queueLimit),
          digest,
          mappedId,
          seq,
          ...fields,
        ]),
      );
    let reply: CreateReply = await submit('');
    // A key that migrate left in the digest's partition may name a job in another partition, which
    // no script here can read: read it there. (Keys the store writes always share the job's partition.)
    if (reply[0] === 'mapped' && this.keys.partitionIndexOf(reply[1]) !== index) {
      const mapped = await this.getJob(reply[1]);
      if (mapped) return { outcome: isReplayOf(mapped, input) ? 'replayed' : 'conflict', job: mapped };
      reply = await submit(reply[1]);
    }
    // The key names a job this call did not declare: again, with that job's hash declared.
    for (let tries = 1; reply[0] === 'mapped' && tries < MAPPED_TRIES; tries++) reply = await submit(reply[1]);
    this.calls.submitAccepted();
    switch (reply[0]) {
      case 'created':
        this.counts.noteCreated(index);
        this.claims.mark(index, undefined);
        return { outcome: 'created', job };
      case 'queue-full':
        return { outcome: 'queue-full', waiting: reply[1] + options.maximumQueueSize - queueLimit };
      case 'mapped':
        throw new Error(`Redis job store: the idempotency key of job ${id} kept changing its job; try again.`);
      case 'existing': {
        let existing: Job;
        try {
          existing = decodeJobReply(reply[1]);
        } catch (error) {
          if (!(error instanceof UnreadableJobError)) throw error;
          // No replay of a job that cannot be read, and no new job over it: it stays for inspection.
          const unreadable = decodeJobReplyLeniently(reply[1]);
          this.logger.warn(
            `Job ${unreadable.id} cannot be read from Redis; a submission naming it was refused as a conflict: ${error.message}`,
          );
          return { outcome: 'conflict', job: unreadable };
        }
        return { outcome: isReplayOf(existing, input) ? 'replayed' : 'conflict', job: existing };
      }
    }
  }

  /**
   * With several partitions, submissions are numbered here rather than by a partition's counter: the
   * time in microseconds, made to grow (exact submission order within a process, by time across
   * processes). Stores of several partitions hold such numbers already, and a counter would now sort
   * new jobs ahead of them. '' with one partition: its script counts.
   */
  nextSequence(): string {
    if (this.keys.partitions.length === 1) return '';
    this.lastSequence = Math.max(Date.now() * 1000, this.lastSequence + 1);
    return String(this.lastSequence);
  }

  /**
   * The job's id. An id the service generated (no X-Async-Request-Id) may be replaced by another random
   * one, so that, with several partitions, the job lands where it is cheapest: with an idempotency key,
   * in the key's partition (the mapping and the job share a partition and the create stays one script);
   * without, in the partition of this moment's other submissions, so that a burst makes one batched
   * script call rather than one per partition (on a 3-master Cluster, about a third less Redis CPU per
   * submit). Each moment goes to the partition with the fewest such jobs, which spreads them evenly. A
   * chosen id decides.
   */
  private idFor(input: NewJob, digest: string): string {
    if (!input.idGenerated || this.keys.partitions.length === 1) return input.id;
    if (digest !== '') return this.idIn(this.keys.partitionIndexOf(digest), input.id);
    if (this.batchPartition === null) {
      this.batchPartition = this.fewestDrawn();
      // The moment ends with the event loop's round of I/O, when the submissions' batches go out.
      setImmediate(() => {
        this.batchPartition = null;
      });
    }
    this.drawnInto[this.batchPartition]!++;
    return this.idIn(this.batchPartition, input.id);
  }

  /**
   * The partition with the fewest ids drawn into it so far, ties taken in turn: moments differ in size
   * (a lone submit, then a burst), so plain turns could heap the bursts on a few partitions; this keeps
   * every partition within one moment's submissions of the others.
   */
  private fewestDrawn(): number {
    const count = this.drawnInto.length;
    let fewest = this.nextBatchPartition;
    for (let i = 1; i < count; i++) {
      const partition = (this.nextBatchPartition + i) % count;
      if (this.drawnInto[partition]! < this.drawnInto[fewest]!) fewest = partition;
    }
    this.nextBatchPartition = (fewest + 1) % count;
    return fewest;
  }

  /**
   * `id` if it falls in `partition`, else a random id that does: a spare one, or new ones drawn until one
   * falls there (as many draws as partitions, on average), keeping those that fall elsewhere as spares.
   */
  private idIn(partition: number, id: string): string {
    if (this.keys.partitionIndexOf(id) === partition) return id;
    const spare = this.spareIds[partition]!.pop();
    if (spare !== undefined) return spare;
    for (;;) {
      const drawn = randomUUID();
      const drawnPartition = this.keys.partitionIndexOf(drawn);
      if (drawnPartition === partition) return drawn;
      const spares = this.spareIds[drawnPartition]!;
      if (spares.length < SPARE_IDS_PER_PARTITION) spares.push(drawn);
    }
  }
}
