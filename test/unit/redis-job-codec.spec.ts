import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { JobStatus, type Job } from '../../lib/job/index.js';
import { newQueuedJob } from '../../lib/job/job-records.js';
import { isUnavailableError } from '../../lib/store/redis/redis-connections.js';
import {
  CLAIMED_JOB_FIELDS,
  decodeClaimedJob,
  decodeJob,
  decodeJobReply,
  encodeJob,
  encodeJsonArg,
  encodeQueuedJob,
  UnreadableJobError,
} from '../../lib/store/redis/redis-job-codec.js';
import { idempotencyDigest, StoreKeys } from '../../lib/store/redis/redis-keys.js';

const job: Job = {
  id: 'j-1',
  name: 'Process',
  status: JobStatus.InProgress,
  payload: { data: 'hello', list: [1, null, { deep: true }] },
  headers: { 'content-type': 'application/json' },
  routeParams: { id: '7' },
  queryParams: { q: ['a', 'b'] },
  owner: '',
  idempotencyKey: null,
  fingerprint: 'fp',
  traceContext: { traceparent: '00-abc-def-01' },
  retryCount: 1,
  maxRetries: 3,
  recoveryCount: 0,
  progress: 40,
  result: null,
  error: { code: 'E', message: 'boom' },
  createdAt: 1_700_000_000_000,
  startedAt: 1_700_000_000_500,
  completedAt: null,
  lastUpdatedAt: 1_700_000_000_600,
  retryDelayUntil: null,
  cancelRequested: true,
  workerId: 'worker-a',
  leaseExpiresAt: 1_700_000_030_500,
};

const asReply = (fields: string[]) => [...fields, 'leaseToken', 't', 'seq', '12'];

describe('redis job codec', () => {
  it('round-trips a job, keeping nulls as absent fields and an empty owner as empty', () => {
    const fields = encodeJob(job);
    expect(fields).not.toContain('result');
    expect(fields).not.toContain('idempotencyKey');
    expect(decodeJobReply(asReply(fields))).toEqual(job);
  });

  it('stores numbers and the status as plain text, for the scripts', () => {
    const record = Object.fromEntries(chunks(encodeJob(job)));
    expect(record).toMatchObject({
      status: 'InProgress',
      retryCount: '1',
      createdAt: '1700000000000',
      cancelRequested: '1',
    });
  });

  it('leaves fields at their usual value out of the hash and reads them back', () => {
    const usual: Job = {
      ...job,
      headers: {},
      routeParams: {},
      queryParams: {},
      retryCount: 0,
      recoveryCount: 0,
      cancelRequested: false,
    };
    const fields = encodeJob(usual);
    for (const field of ['headers', 'routeParams', 'queryParams', 'retryCount', 'recoveryCount', 'cancelRequested']) {
      expect(fields).not.toContain(field);
    }
    expect(decodeJobReply(asReply(fields))).toEqual(usual);
  });

  it("reads a terminal job's lastUpdatedAt from its completedAt, which it is not stored apart from", () => {
    const finished: Job = { ...job, status: JobStatus.Completed, completedAt: 1_700_000_001_000 };
    const record: Record<string, string> = Object.fromEntries(chunks(encodeJob(finished)));
    delete record.lastUpdatedAt;
    expect(decodeJob(record).lastUpdatedAt).toBe(1_700_000_001_000);
    delete record.completedAt;
    expect(() => decodeJob(record)).toThrow("field 'lastUpdatedAt' is missing");
  });

  it.each([
    ['a missing required field', { name: undefined }, "field 'name' is missing"],
    ['an unknown status', { status: 'Lost' }, "status 'Lost'"],
    ['broken JSON', { payload: '{broken' }, "field 'payload' is not JSON"],
    ['a number that is none', { retryCount: 'many' }, "field 'retryCount' is not a number"],
  ])('refuses %s', (_case, change, message) => {
    const record: Record<string, string> = Object.fromEntries(chunks(encodeJob(job)));
    for (const [field, value] of Object.entries(change)) {
      if (value === undefined) delete record[field];
      else record[field] = value;
    }
    expect(() => decodeJob(record)).toThrow(UnreadableJobError);
    expect(() => decodeJob(record)).toThrow(message);
  });

  it('encodes a new Queued job exactly as encodeJob does, for any input (fast-check)', () => {
    const text = fc.string({ maxLength: 12 });
    const strings = fc.dictionary(text, text, { maxKeys: 3 });
    const input = fc.record({
      id: fc.uuid(),
      name: text,
      payload: fc.jsonValue({ maxDepth: 3 }),
      headers: strings,
      routeParams: strings,
      queryParams: fc.dictionary(text, fc.oneof(text, fc.array(text, { maxLength: 3 })), { maxKeys: 3 }),
      owner: fc.option(text),
      idempotencyKey: fc.option(text),
      fingerprint: fc.oneof(fc.constant(''), fc.stringMatching(/^[0-9a-f]{64}$/)),
      traceContext: fc.option(strings),
      maxRetries: fc.nat({ max: 100 }),
    });
    fc.assert(
      fc.property(input, fc.integer({ min: 0, max: 4_102_444_800_000 }), (generated, now) => {
        const job = newQueuedJob(generated as Parameters<typeof newQueuedJob>[0], now);
        expect(encodeQueuedJob(job)).toEqual(encodeJob(job));
      }),
      { numRuns: 300 },
    );
  });

  describe('a claimed job, from its values in CLAIMED_JOB_FIELDS order', () => {
    const lease = { startedAt: job.startedAt!, workerId: job.workerId!, leaseExpiresAt: job.leaseExpiresAt! };
    /** What claim-due.lua answers for a job: its hash's values in order, nil for an absent field. */
    const claimValues = (stored: Job) => {
      const record: Record<string, string> = Object.fromEntries(chunks(encodeJob(stored)));
      return CLAIMED_JOB_FIELDS.map((field): string | null => record[field] ?? null);
    };
    const claimed: Job = { ...job, lastUpdatedAt: job.startedAt!, retryDelayUntil: null };

    it('names every Job field but those the claim sets or clears', () => {
      const setByClaim = ['status', 'startedAt', 'lastUpdatedAt', 'workerId', 'leaseExpiresAt', 'retryDelayUntil'];
      expect([...CLAIMED_JOB_FIELDS, ...setByClaim].sort()).toEqual(Object.keys(job).sort());
    });

    it('decodes to the job the claim leased, fields at their usual value included', () => {
      expect(decodeClaimedJob(claimValues(claimed), lease)).toEqual(claimed);
      const usual: Job = {
        ...claimed,
        headers: {},
        routeParams: {},
        queryParams: {},
        retryCount: 0,
        recoveryCount: 0,
        owner: null,
        progress: null,
        error: null,
        traceContext: null,
        cancelRequested: false,
      };
      expect(decodeClaimedJob(claimValues(usual), lease)).toEqual(usual);
    });

    it.each([
      ['a missing required field', 'fingerprint', null, "field 'fingerprint' is missing"],
      ['broken JSON', 'payload', '{broken', "field 'payload' is not JSON"],
      ['a number that is none', 'maxRetries', 'three', "field 'maxRetries' is not a number"],
    ] as const)('refuses %s', (_case, field, value, message) => {
      const values = claimValues(claimed);
      values[CLAIMED_JOB_FIELDS.indexOf(field)] = value;
      expect(() => decodeClaimedJob(values, lease)).toThrow(UnreadableJobError);
      expect(() => decodeClaimedJob(values, lease)).toThrow(message);
    });

    it('refuses a reply of another length (a script of another version)', () => {
      expect(() => decodeClaimedJob(claimValues(claimed).slice(1), lease)).toThrow('18 fields, not 19');
    });
  });

  it("encodes a null JSON argument as '' and any value as JSON", () => {
    expect(encodeJsonArg(null)).toBe('');
    expect(encodeJsonArg('')).toBe('""');
    expect(encodeJsonArg({ a: 1 })).toBe('{"a":1}');
  });
});

describe('redis key layout', () => {
  it('keeps one partition under the prefix itself, as 0.1.0 did, with queues and leases per name, and its event channels under it', () => {
    const keys = new StoreKeys('{t}');
    expect(keys.partitions.map((partition) => partition.prefix)).toEqual(['{t}']);
    expect(keys.job('x')).toBe('{t}:job:x');
    expect([keys.partitions[0]!.waiting('Process'), keys.partitions[0]!.leases('Process')]).toEqual([
      '{t}:waiting:Process',
      '{t}:leases:Process',
    ]);
    expect([keys.meta, keys.workers, keys.partitions[0]!.events, keys.partitions[0]!.finished]).toEqual([
      '{t}:meta',
      '{t}:workers',
      '{t}:events',
      '{t}:finished',
    ]);
  });

  it("puts a job in partition crc32(id) mod N, under that partition prefix, and names the partition's event channel under it", () => {
    const keys = new StoreKeys('{t}', 4);
    const id = '3f0c7a52-0d7e-4b8e-9f55-1c2d3e4f5a6b';
    const index = crc32(id) % 4;
    expect(keys.partitionIndexOf(id)).toBe(index);
    expect(keys.job(id)).toBe(`${keys.partitions[index]!.prefix}:job:${id}`);
    // Each partition's shard channels lie in its slot: named under its prefix.
    expect(keys.partitions[index]!.events).toBe(`${keys.partitions[index]!.prefix}:events`);
    expect(new Set(keys.partitions.map((partition) => partition.prefix)).size).toBe(4);
  });

  it('refuses a partition count that is not a whole number of at least 1, naming it', () => {
    expect(() => new StoreKeys('{t}', 0)).toThrow('partitions = 0: must be a whole number of at least 1');
  });

  it('scopes idempotency digests by name, owner and key', () => {
    const base = { name: 'Process', owner: 'alice', idempotencyKey: 'k' };
    expect(idempotencyDigest(base)).toBe(idempotencyDigest({ ...base }));
    expect(idempotencyDigest(base)).not.toBe(idempotencyDigest({ ...base, owner: 'bob' }));
    expect(idempotencyDigest(base)).not.toBe(idempotencyDigest({ ...base, name: 'Other' }));
    expect(idempotencyDigest({ ...base, owner: null })).not.toBe(idempotencyDigest({ ...base, owner: 'null' }));
  });
});

describe('redis error classification', () => {
  const reply = (message: string) => Object.assign(new Error(message), { name: 'ReplyError' });

  it('treats connection failures and unavailable replies as unavailable', () => {
    expect(isUnavailableError(new Error("Stream isn't writeable and enableOfflineQueue options is false"))).toBe(true);
    expect(isUnavailableError(new Error('Command timed out'))).toBe(true);
    expect(isUnavailableError(reply('LOADING Redis is loading the dataset in memory'))).toBe(true);
    expect(isUnavailableError(reply("OOM command not allowed when used memory > 'maxmemory'."))).toBe(true);
  });

  it('leaves errors of a command alone', () => {
    expect(isUnavailableError(reply('ERR Error running script'))).toBe(false);
    expect(isUnavailableError(reply('WRONGTYPE Operation against a key holding the wrong kind of value'))).toBe(false);
    expect(isUnavailableError('not an error')).toBe(false);
  });
});

function chunks(fields: string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i < fields.length; i += 2) pairs.push([fields[i]!, fields[i + 1]!]);
  return pairs;
}
