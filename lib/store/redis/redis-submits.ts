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
 * The Redis store's submit: the job's id and partition, its sequence number with several partitions,
 * and createJobs.lua (batched per partition by RedisCalls).
 */
export class RedisSubmits {
  private lastSequence = 0;

  constructor(
    private readonly calls: RedisCalls,
    private readonly keys: StoreKeys,
    private readonly counts: PartitionCounts,
    private readonly claims: RedisClaims,
    private readonly logger: StoreLogger,
    private readonly getJob: (id: string) => Promise<Job | null>,
  ) {}

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
   * The job's id. An id the service generated for a submission with an idempotency key is drawn again
   * until it falls in the digest's partition (expected: as many draws as partitions), so that the
   * mapping and the job share a partition and the create stays one script. A chosen id decides.
   */
  private idFor(input: NewJob, digest: string): string {
    if (digest === '' || !input.idGenerated || this.keys.partitions.length === 1) return input.id;
    const wanted = this.keys.partitionIndexOf(digest);
    let id = input.id;
    while (this.keys.partitionIndexOf(id) !== wanted) id = randomUUID();
    return id;
  }
}
