import { readdirSync, readFileSync } from 'node:fs';
import { JobStatus, type Job } from '../../lib/job/index.js';
import { newQueuedJob } from '../../lib/job/job-records.js';
import { CLAIMED_JOB_FIELDS, decodeClaimedJob, encodeJob } from '../../lib/store/redis/redis-job-codec.js';

const dir = new URL('../../lib/store/redis/commands/', import.meta.url);
const read = (file: string) => readFileSync(new URL(file, dir), 'utf8').replace(/--.*$/gm, '');
const claimScript = read('includes/claim-due.lua');
const leaveStatus = read('includes/leave-status.lua');

/** The body of a top-level `local function name(...)` up to its `end` at column 0. */
function functionBody(source: string, name: string): string {
  const body = new RegExp(`^local function ${name}\\(.*?^end$`, 'ms').exec(source)?.[0];
  if (body === undefined) throw new Error(`no local function ${name}`);
  return body;
}

/** The quoted field names of a Redis call's arguments after the key, e.g. HSET's names (every other one). */
function quotedNames(call: string): string[] {
  return [...call.matchAll(/'(\w+)'/g)].map((match) => match[1]!);
}

const queued: Job = newQueuedJob(
  {
    ...{ id: 'j', name: 'N', payload: null, headers: {}, routeParams: {}, queryParams: {} },
    ...{ owner: null, idempotencyKey: null, fingerprint: '', traceContext: null, maxRetries: 0 },
  },
  1,
);

/** The claimed fields the codec may find absent: those without which a claimed job still decodes. */
const codecAllowsAbsent = (() => {
  const lease = { startedAt: 2, workerId: 'w', leaseExpiresAt: 3 };
  const record: Record<string, string> = {};
  const flat = encodeJob(queued);
  for (let i = 0; i < flat.length; i += 2) record[flat[i]!] = flat[i + 1]!;
  return CLAIMED_JOB_FIELDS.filter((field) => {
    const values = CLAIMED_JOB_FIELDS.map((name) => (name === field ? null : (record[name] ?? null)));
    try {
      decodeClaimedJob(values, lease);
      return true;
    } catch {
      return false;
    }
  });
})();

describe('the job fields in the Lua scripts agree with the codec (redis-job-codec.ts FIELDS)', () => {
  it('claim-due.lua answers the fields of CLAIMED_JOB_FIELDS, in its order', () => {
    const values = [...functionBody(claimScript, 'claimedValues').matchAll(/job\.(\w+)/g)].map((match) => match[1]);
    expect(values).toEqual(CLAIMED_JOB_FIELDS);
  });

  it('claim-due.lua answers false (nil) for an absent field exactly where the codec accepts one', () => {
    const claimedValues = functionBody(claimScript, 'claimedValues');
    const orFalse = [...claimedValues.matchAll(/job\.(\w+) or false/g)].map((match) => match[1]);
    expect(orFalse).toEqual(codecAllowsAbsent);
  });

  it('claim-due.lua refuses a job that lacks a field the codec requires (id is checked by readJob)', () => {
    const missingField = functionBody(claimScript, 'missingField');
    const checked = [...missingField.matchAll(/not job\.(\w+)/g)].map((match) => match[1]);
    const required = CLAIMED_JOB_FIELDS.filter((field) => !codecAllowsAbsent.includes(field));
    expect(['id', ...checked]).toEqual(required);
  });

  it('the claim sets the Job fields a claim sets, and dropLease clears every lease field the claim sets', () => {
    const startLease = claimScript;
    const hset = /redis\.call\('HSET', key,( 'status', 'InProgress'.*?)\)\n/s.exec(startLease)?.[1] ?? '';
    const setFields = quotedNames(hset).filter((name) => name !== JobStatus.InProgress);
    const notAnswered = Object.keys(queued).filter((field) => !(CLAIMED_JOB_FIELDS as string[]).includes(field));
    expect(startLease).toContain("redis.call('HDEL', key, 'retryDelayUntil')");
    expect(setFields).toContain('startedAt');
    expect([...setFields.filter((name) => name !== 'leaseToken'), 'retryDelayUntil'].sort()).toEqual(
      notAnswered.sort(),
    );
    const cleared = quotedNames(functionBody(leaveStatus, 'dropLease').replace("'HDEL'", ''));
    expect(cleared.sort()).toEqual(['leaseExpiresAt', 'leaseToken', 'workerId']);
  });

  it('no script clears a lease field but through dropLease', () => {
    const scripts = [
      ...readdirSync(dir).filter((file) => file.endsWith('.lua')),
      ...readdirSync(new URL('includes/', dir)).map((file) => `includes/${file}`),
    ];
    for (const file of scripts) {
      const source = read(file).replace(functionBody(leaveStatus, 'dropLease'), '');
      const hdels = [...source.matchAll(/'HDEL'[^)]*\)/g)].map((match) => match[0]);
      for (const hdel of hdels) {
        expect({ file, hdel, clearsLease: /leaseToken|leaseExpiresAt|workerId/.test(hdel) }).toMatchObject({
          clearsLease: false,
        });
      }
    }
  });
});
