import {
  attemptOf,
  canTransition,
  canonicalJson,
  errorCodeOf,
  fingerprintOf,
  isTerminal,
  isWaiting,
  JobStatus,
  retryDelayMs,
  toJobDocument,
  toJobError,
  type Job,
  type JsonValue,
} from '../../lib/job/index.js';
import { NonRetryableError } from '../../lib/errors/non-retryable.error.js';
import { cloneJson } from '../../lib/job/job-records.js';
import { AsyncHandler } from '../../lib/handlers/async-handler.decorator.js';

describe('job statuses and transitions', () => {
  it('knows terminal and waiting statuses', () => {
    expect(['Completed', 'Failed', 'Canceled'].every((s) => isTerminal(s as JobStatus))).toBe(true);
    expect(['Queued', 'Scheduled', 'InProgress'].some((s) => isTerminal(s as JobStatus))).toBe(false);
    expect(isWaiting(JobStatus.Queued) && isWaiting(JobStatus.Scheduled)).toBe(true);
    expect(isWaiting(JobStatus.InProgress)).toBe(false);
  });

  it('allows the lifecycle of the spec and nothing out of a terminal status', () => {
    expect(canTransition('Queued', 'InProgress')).toBe(true);
    expect(canTransition('InProgress', 'Scheduled')).toBe(true);
    expect(canTransition('Scheduled', 'InProgress')).toBe(true);
    expect(canTransition('InProgress', 'Queued')).toBe(true);
    expect(canTransition('Queued', 'Canceled')).toBe(true);
    expect(canTransition('Queued', 'Completed')).toBe(false);
    for (const terminal of ['Completed', 'Failed', 'Canceled'] as const) {
      for (const to of Object.values(JobStatus)) expect(canTransition(terminal, to)).toBe(false);
    }
  });
});

describe('retryDelayMs', () => {
  const policy = { retryDelayBaseSeconds: 2, maxRetryDelaySeconds: 300 };
  const highest = () => 0;
  const lowest = () => 1 - Number.EPSILON;

  it('doubles from the base: at most 2, 4, 8 s, and at least half of each', () => {
    expect([1, 2, 3].map((k) => retryDelayMs(k, policy, highest))).toEqual([2000, 4000, 8000]);
    expect([1, 2, 3].map((k) => retryDelayMs(k, policy, lowest))).toEqual([1000, 2000, 4000]);
  });

  it('caps one delay at maxRetryDelaySeconds, the jitter below the cap', () => {
    expect(retryDelayMs(10, policy, highest)).toBe(300_000);
    expect(retryDelayMs(10, policy, lowest)).toBe(150_000);
    expect(retryDelayMs(3, { retryDelayBaseSeconds: 5, maxRetryDelaySeconds: 12 }, highest)).toBe(12_000);
  });

  it('spreads 1,000 delays of the same retry over [d / 2, d], never all equal', () => {
    const delays = Array.from({ length: 1000 }, () => retryDelayMs(3, policy));
    expect(new Set(delays).size).toBeGreaterThan(100);
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(4000);
    expect(Math.max(...delays)).toBeLessThanOrEqual(8000);
    // Both halves of the range are used, not only one end.
    expect(delays.some((delay) => delay < 5000)).toBe(true);
    expect(delays.some((delay) => delay > 7000)).toBe(true);
  });

  it('accepts fractional bases', () => {
    expect(retryDelayMs(2, { retryDelayBaseSeconds: 0.05, maxRetryDelaySeconds: 300 }, highest)).toBe(100);
  });

  it('rejects a retry number below 1', () => {
    expect(() => retryDelayMs(0, policy)).toThrow(RangeError);
  });
});

describe('errors recorded on jobs', () => {
  it('takes error.code when it is a string', () => {
    expect(errorCodeOf(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe('ECONNRESET');
    expect(errorCodeOf(new NonRetryableError('x', 'BAD_INPUT'))).toBe('BAD_INPUT');
  });

  it('else the class name in upper snake case', () => {
    class PaymentDeclinedError extends Error {}
    expect(errorCodeOf(new PaymentDeclinedError('x'))).toBe('PAYMENT_DECLINED_ERROR');
    expect(errorCodeOf(new TypeError('x'))).toBe('TYPE_ERROR');
    expect(errorCodeOf(Object.assign(new Error('x'), { code: 42 }))).toBe('ERROR');
    expect(errorCodeOf('a string')).toBe('ERROR');
  });

  it('with details on, keeps message, type and stack', () => {
    const error = toJobError(new RangeError('out of range'), true);
    expect(error).toMatchObject({ code: 'RANGE_ERROR', message: 'out of range', type: 'RangeError' });
    expect(error.stack).toContain('out of range');
    expect(toJobError('plain', true)).toEqual({ code: 'ERROR', message: 'plain' });
  });
});

describe('toJobDocument', () => {
  const job: Job = {
    id: '3f0c2a8e-5b7d-4c1e-9a2b-1d2e3f4a5b6c',
    name: 'Process',
    status: JobStatus.Failed,
    payload: { secret: 'payload' },
    headers: { authorization: 'Bearer x' },
    routeParams: {},
    queryParams: {},
    owner: 'alice',
    idempotencyKey: 'k',
    fingerprint: 'f',
    traceContext: null,
    retryCount: 1,
    maxRetries: 3,
    recoveryCount: 0,
    progress: 40,
    result: null,
    error: { code: 'E', message: 'boom', type: 'Error', stack: 'Error: boom\n    at x' },
    createdAt: Date.UTC(2026, 10, 26, 10),
    startedAt: Date.UTC(2026, 10, 26, 10, 0, 1),
    completedAt: Date.UTC(2026, 10, 26, 10, 0, 2),
    lastUpdatedAt: Date.UTC(2026, 10, 26, 10, 0, 2),
    retryDelayUntil: null,
    cancelRequested: false,
    workerId: 'w',
    leaseExpiresAt: null,
  };

  it('shows the public fields with ISO times, never payload, headers, owner or lease data', () => {
    const document = toJobDocument(job, '/jobs/x');
    expect(document).toEqual({
      id: job.id,
      name: 'Process',
      status: 'Failed',
      retryCount: 1,
      maxRetries: 3,
      progress: 40,
      createdAt: '2026-11-26T10:00:00.000Z',
      startedAt: '2026-11-26T10:00:01.000Z',
      completedAt: '2026-11-26T10:00:02.000Z',
      lastUpdatedAt: '2026-11-26T10:00:02.000Z',
      retryDelayUntil: null,
      result: null,
      error: { code: 'E', message: 'boom' },
      links: { self: '/jobs/x' },
    });
  });

  it('offers a cancel link only while the job can be canceled', () => {
    expect(toJobDocument({ ...job, status: JobStatus.Queued }, '/jobs/x').links).toEqual({
      self: '/jobs/x',
      cancel: '/jobs/x',
    });
  });

  it('shows error type and stack only when asked to', () => {
    expect(toJobDocument(job, undefined, true).error).toMatchObject({ type: 'Error', stack: expect.any(String) });
    expect(toJobDocument(job).links).toBeUndefined();
  });

  it('numbers attempts from 1, counting retries and recoveries', () => {
    expect(attemptOf({ retryCount: 0, recoveryCount: 0 })).toBe(1);
    expect(attemptOf({ retryCount: 2, recoveryCount: 1 })).toBe(4);
  });
});

describe('fingerprints', () => {
  it('ignore key order and tell payloads and names apart', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] })).toBe('{"a":[{"c":3,"d":2}],"b":1}');
    expect(fingerprintOf('P', { a: 1, b: 2 })).toBe(fingerprintOf('P', { b: 2, a: 1 }));
    expect(fingerprintOf('P', { a: 1 })).not.toBe(fingerprintOf('P', { a: 2 }));
    expect(fingerprintOf('P', { a: 1 })).not.toBe(fingerprintOf('Q', { a: 1 }));
  });

  it('write what JSON.stringify writes, sorted, for empty, nested and escaped values', () => {
    const value = { z: [], y: {}, x: [1, 'two', null, true, { '"q"': 'a\u0000b' }], w: -0.5 };
    expect(JSON.parse(canonicalJson(value))).toEqual(value);
    expect(canonicalJson(value)).toBe('{"w":-0.5,"x":[1,"two",null,true,{"\\"q\\"":"a\\u0000b"}],"y":{},"z":[]}');
    expect(canonicalJson('s')).toBe('"s"');
  });

  it('are computed for a payload nested 10,000 levels deep, where recursion would overflow the stack', () => {
    const deep = JSON.parse(`{"b":${'['.repeat(10_000)}{"d":1,"c":2}${']'.repeat(10_000)},"a":0}`) as JsonValue;
    expect(canonicalJson(deep)).toBe(`{"a":0,"b":${'['.repeat(10_000)}{"c":2,"d":1}${']'.repeat(10_000)}}`);
  });
});

describe('cloneJson', () => {
  it('copies a value nested 10,000 levels deep, sharing nothing with it', () => {
    const text = `{"a":${'[{"b":'.repeat(10_000)}1${'}]'.repeat(10_000)}}`;
    const value = JSON.parse(text) as JsonValue;
    const copy = cloneJson(value);
    // canonicalJson, not JSON.stringify: that recurses and overflows at this depth.
    expect(canonicalJson(copy)).toBe(text);
    let [source, target] = [value, copy] as unknown[];
    for (let i = 0; i < 20_000; i++) {
      expect(target === source).toBe(false);
      const step = (node: unknown) =>
        Array.isArray(node) ? node[0] : ((node as Record<string, unknown>).a ?? (node as Record<string, unknown>).b);
      [source, target] = [step(source), step(target)];
    }
  });

  it('copies a __proto__ key as an own property, at any depth, never as the prototype', () => {
    for (const depth of [0, 100]) {
      const value = JSON.parse(`${'['.repeat(depth)}{"__proto__":{"admin":true}}${']'.repeat(depth)}`) as JsonValue;
      let copy = cloneJson(value) as unknown;
      for (let i = 0; i < depth; i++) copy = (copy as unknown[])[0];
      expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
      expect((copy as { admin?: boolean }).admin).toBeUndefined();
      expect(Object.getOwnPropertyDescriptor(copy, '__proto__')?.value).toEqual({ admin: true });
    }
  });
});

describe('@AsyncHandler options', () => {
  it.each([
    [{ maxRetries: -1 }, 'maxRetries = -1: must be an integer from 0 to 100'],
    [{ timeoutMs: 0 }, 'timeoutMs = 0: must be an integer from 1'],
    [{ timeoutMs: 2 ** 31 }, 'timeoutMs = 2147483648'],
    [{ retryDelayBaseSeconds: 0 }, 'retryDelayBaseSeconds = 0: must be a positive number'],
  ])('rejects %j, naming the handler and the option', (options, message) => {
    expect(() => AsyncHandler('Broken', options)).toThrow(`@AsyncHandler('Broken') has invalid options: ${message}`);
  });

  it('rejects an empty name', () => {
    expect(() => AsyncHandler('  ')).toThrow('needs a non-empty name');
  });
});
