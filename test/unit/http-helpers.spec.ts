import type { ApplicationConfig } from '@nestjs/core';
import fc from 'fast-check';
import { captureHeaders, headerCapture, queryParamCapture, SENSITIVE_HEADERS } from '../../lib/http/capture-headers.js';
import { compileRoutes } from '../../lib/http/express-body-reader.js';
import { readIdempotencyHeaders } from '../../lib/http/idempotency.js';
import { toJson } from '../../lib/http/job-submitter.js';
import { JobLocations } from '../../lib/http/job-locations.js';
import type { ResolvedAsyncEndpointsOptions } from '../../lib/options/async-endpoints-options.js';

describe('captureHeaders', () => {
  const headers = {
    Authorization: 'Bearer secret',
    cookie: 'sid=1',
    'proxy-authorization': 'Basic x',
    'x-api-key': 'k',
    'set-cookie': 'a=b',
    'X-Tenant': 'acme',
    accept: ['a', 'b'],
    'content-length': '12',
  };

  it('stores everything but credentials and transport headers, names in lower case', () => {
    expect(captureHeaders(headers, {})).toEqual({ 'x-tenant': 'acme', accept: 'a, b' });
  });

  it('never stores a sensitive header unless an include list names it', () => {
    for (const name of SENSITIVE_HEADERS) expect(captureHeaders(headers, {})).not.toHaveProperty(name);
    expect(captureHeaders(headers, { include: ['authorization', 'x-tenant'] })).toEqual({
      authorization: 'Bearer secret',
      'x-tenant': 'acme',
    });
  });

  it('drops excluded headers', () => {
    expect(captureHeaders(headers, { exclude: ['X-Tenant'] })).toEqual({ accept: 'a, b' });
    expect(captureHeaders(headers, { include: ['authorization', 'x-tenant'], exclude: ['Authorization'] })).toEqual({
      'x-tenant': 'acme',
    });
  });

  it('compiles its options once for many requests', () => {
    const capture = headerCapture({ exclude: ['accept'] });
    expect(capture(headers)).toEqual({ 'x-tenant': 'acme' });
    expect(capture({ 'X-Tenant': 'other', accept: 'text/html' })).toEqual({ 'x-tenant': 'other' });
  });
});

describe('the credential-name filter of captured headers and query parameters', () => {
  it('leaves out the credential headers of load balancers and proof-of-possession tokens', () => {
    const sent = {
      'x-amzn-oidc-data': 'jwt',
      'x-ms-client-principal': 'b64',
      dpop: 'proof',
      'x-pass': 'p',
      'x-pwd': 'p',
      'x-tenant': 'acme',
    };
    expect(headerCapture({})(sent)).toEqual({ 'x-tenant': 'acme' });
  });

  it('leaves out sig and code query parameters and the nested objects of an extended query parser, keeping strings and string arrays', () => {
    const query = {
      sig: 'sas',
      code: 'oauth-code',
      pwd: 'p',
      pass: 'p',
      page: '2',
      filter: { api_key: 'k', status: 'open' },
      tags: ['a', 'b'],
    };
    expect(queryParamCapture({})(query)).toEqual({ page: '2', tags: ['a', 'b'] });
  });

  it('keeps names that only contain sig or code inside a word (design, barcode)', () => {
    expect(queryParamCapture({})({ design: 'x', barcode: '1' })).toEqual({ design: 'x', barcode: '1' });
  });
});

describe('toJson (the payload as JSON.stringify writes it)', () => {
  const roundTrip = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;

  class Dto {
    data = 'hello';
    count = 3;
    nested = { list: [1, 'two', null, { deep: true }] };
    get computed() {
      return 'not an own property';
    }
  }

  it.each([
    ['a class instance (own enumerable properties)', new Dto()],
    ['undefined, functions and symbols as properties', { a: undefined, b: () => 1, c: Symbol('s'), d: 1 }],
    ['undefined, functions and symbols in arrays', [undefined, () => 1, Symbol('s'), 1]],
    ['holes in arrays', [1, , 3]],
    ['non-finite numbers and -0', { nan: NaN, inf: Infinity, negInf: -Infinity, negZero: -0, list: [NaN, -0] }],
    ['Dates and other toJSON', { when: new Date(0), custom: { toJSON: (key: string) => `key ${key}` } }],
    ['boxed primitives', { s: new String('s'), n: new Number(1), b: new Boolean(false) }],
    ['a __proto__ key', JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as unknown],
    ['Maps, Sets and typed arrays', { map: new Map([[1, 2]]), set: new Set([1]), bytes: new Uint8Array([1, 2]) }],
    ['integer-like keys', { b: 1, 2: 'two', a: 3, 1: 'one' }],
    ['deep nesting', JSON.parse(`${'['.repeat(200)}1${']'.repeat(200)}`) as unknown],
  ])('copies %s as a JSON round trip would', (_name, value) => {
    const copy = toJson(value);
    expect(copy).toStrictEqual(roundTrip(value));
    expect(JSON.stringify(copy)).toBe(JSON.stringify(value));
    expect(Object.getPrototypeOf(copy)).toBe(Object.getPrototypeOf(roundTrip(value)));
  });

  it('takes a missing body as {} and a primitive as it is', () => {
    expect(toJson(undefined)).toEqual({});
    expect(toJson('text')).toBe('text');
    expect(toJson(null)).toBeNull();
  });

  it('shares nothing mutable with the value it copies', () => {
    const value = { a: { b: [1, 2] } };
    const copy = toJson(value) as { a: { b: number[] } };
    copy.a.b.push(3);
    expect(value.a.b).toEqual([1, 2]);
  });

  it('fails on a cycle like JSON.stringify', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => toJson(cyclic)).toThrow(TypeError);
  });

  it('equals a JSON round trip for any JSON-like value', () => {
    const values = fc.anything({
      withBoxedValues: true,
      withMap: true,
      withSet: true,
      withTypedArray: true,
      withSparseArray: true,
    });
    fc.assert(
      fc.property(values, (value) => {
        fc.pre(value !== undefined);
        let expected: unknown;
        try {
          expected = roundTrip(value);
        } catch (error) {
          expect(() => toJson(value)).toThrow((error as Error).constructor as new () => Error);
          return;
        }
        expect(JSON.stringify(toJson(value))).toBe(JSON.stringify(expected));
        expect(toJson(value)).toStrictEqual(expected);
      }),
    );
  });
});

describe('JobLocations', () => {
  const locations = (prefix: { value: string }, jobsPath: string | false) =>
    new JobLocations(
      { getGlobalPrefix: () => prefix.value } as ApplicationConfig,
      { http: { jobsPath } } as ResolvedAsyncEndpointsOptions,
    );
  const ID = '3f0c2a8e-5b7d-4c1e-9a2b-1d2e3f4a5b6c';

  it.each([
    ['', 'jobs', `/jobs/${ID}`],
    ['v1', 'jobs', `/v1/jobs/${ID}`],
    ['/v1/', '/jobs/', `/v1/jobs/${ID}`],
    ['api/v2', 'async/jobs', `/api/v2/async/jobs/${ID}`],
    ['', '/', `/${ID}`],
  ])('prefix %j, jobsPath %j: %s', (prefix, jobsPath, expected) => {
    expect(locations({ value: prefix }, jobsPath).of(ID)).toBe(expected);
  });

  it('encodes the id and follows a global prefix set later', () => {
    const prefix = { value: '' };
    const of = locations(prefix, 'jobs');
    expect(of.of('a b/c')).toBe('/jobs/a%20b%2Fc');
    prefix.value = 'v1';
    expect(of.of(ID)).toBe(`/v1/jobs/${ID}`);
    expect(of.of('')).toBe('/v1/jobs');
  });

  it('has no location without status routes', () => {
    expect(locations({ value: 'v1' }, false).of(ID)).toBeUndefined();
  });
});

describe('compileRoutes', () => {
  const routes = [
    { method: 'POST', path: '/api/process' },
    { method: 'PUT', path: '/v1/items/:id' },
    { method: 'ALL', path: '/files/*path' },
  ];
  const matches = compileRoutes(routes, { caseSensitive: false, strict: false });

  it('matches methods and Nest path syntax', () => {
    expect(matches('POST', '/api/process')).toBe(true);
    expect(matches('POST', '/api/process/')).toBe(true);
    expect(matches('GET', '/api/process')).toBe(false);
    expect(matches('POST', '/api/processes')).toBe(false);
    expect(matches('PUT', '/v1/items/42')).toBe(true);
    expect(matches('PUT', '/v1/items/42/more')).toBe(false);
    expect(matches('DELETE', '/files/a/b/c')).toBe(true);
  });

  it("follows Express's case sensitive and strict routing: any case and a trailing slash unless they are on", () => {
    expect(matches('POST', '/API/Process')).toBe(true);
    expect(matches('PUT', '/V1/ITEMS/42/')).toBe(true);
    const sensitive = compileRoutes(routes, { caseSensitive: true, strict: false });
    expect(sensitive('POST', '/API/Process')).toBe(false);
    expect(sensitive('POST', '/api/process/')).toBe(true);
    const strict = compileRoutes(routes, { caseSensitive: false, strict: true });
    expect(strict('POST', '/api/process/')).toBe(false);
    expect(strict('POST', '/API/process')).toBe(true);
  });
});

describe('readIdempotencyHeaders', () => {
  it('accepts a UUID job id and a printable key', () => {
    expect(
      readIdempotencyHeaders({
        'x-async-request-id': '3F0C2A8E-5B7D-4C1E-9A2B-1D2E3F4A5B6C',
        'idempotency-key': 'order 42',
      }),
    ).toEqual({ jobId: '3f0c2a8e-5b7d-4c1e-9a2b-1d2e3f4a5b6c', idempotencyKey: 'order 42' });
  });

  it.each([
    [{ 'x-async-request-id': 'not-a-uuid' }, 'X-Async-Request-Id must be a UUID'],
    [{ 'idempotency-key': 'x'.repeat(256) }, 'Idempotency-Key must be 1 to 255'],
    [{ 'idempotency-key': 'tab\there' }, 'Idempotency-Key must be 1 to 255'],
  ])('rejects %j with a 400 problem', (headers, detail) => {
    expect(() => readIdempotencyHeaders(headers)).toThrow(
      expect.objectContaining({
        problemDetails: expect.objectContaining({ status: 400, detail: expect.stringContaining(detail) }),
      }),
    );
  });
});
