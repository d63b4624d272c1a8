import { captureHeaders, SENSITIVE_HEADERS } from '../../lib/http/capture-headers.js';
import { compileRoutes } from '../../lib/http/express-body-reader.js';
import { readIdempotencyHeaders } from '../../lib/http/idempotency.js';

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
  });
});

describe('compileRoutes', () => {
  const matches = compileRoutes([
    { method: 'POST', path: '/api/process' },
    { method: 'PUT', path: '/v1/items/:id' },
    { method: 'ALL', path: '/files/*path' },
  ]);

  it('matches methods and Nest path syntax', () => {
    expect(matches('POST', '/api/process')).toBe(true);
    expect(matches('POST', '/api/process/')).toBe(true);
    expect(matches('GET', '/api/process')).toBe(false);
    expect(matches('POST', '/api/processes')).toBe(false);
    expect(matches('PUT', '/v1/items/42')).toBe(true);
    expect(matches('PUT', '/v1/items/42/more')).toBe(false);
    expect(matches('DELETE', '/files/a/b/c')).toBe(true);
  });
});

describe('readIdempotencyHeaders', () => {
  it('accepts a UUID job id and a printable key', () => {
    expect(
      readIdempotencyHeaders({ 'x-async-request-id': '3F0C2A8E-5B7D-4C1E-9A2B-1D2E3F4A5B6C', 'idempotency-key': 'order 42' }),
    ).toEqual({ jobId: '3f0c2a8e-5b7d-4c1e-9a2b-1d2e3f4a5b6c', idempotencyKey: 'order 42' });
  });

  it.each([
    [{ 'x-async-request-id': 'not-a-uuid' }, 'X-Async-Request-Id must be a UUID'],
    [{ 'idempotency-key': 'x'.repeat(256) }, 'Idempotency-Key must be 1 to 255'],
    [{ 'idempotency-key': 'tab\there' }, 'Idempotency-Key must be 1 to 255'],
  ])('rejects %j with a 400 problem', (headers, detail) => {
    expect(() => readIdempotencyHeaders(headers)).toThrow(
      expect.objectContaining({ problemDetails: expect.objectContaining({ status: 400, detail: expect.stringContaining(detail) }) }),
    );
  });
});
