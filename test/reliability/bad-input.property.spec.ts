import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import type { INestApplication } from '@nestjs/common';
import fc from 'fast-check';
import { JobStore } from '../../lib/index.js';
import { startSampleApp } from '../support/sample-app.js';
import { PLATFORMS, type HttpPlatform } from '../support/test-platforms.js';

/** Per platform. */
const RUNS = 600;
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;
/** The library's routes in the sample: its async endpoints and the status resource. */
const ENDPOINTS = ['/api/process', '/api/generate-report', '/api/flaky'];

interface Probe {
  method: (typeof METHODS)[number];
  path: string;
  headers: Record<string, string>;
  body: Buffer | null;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** One raw HTTP request: node's client sends what it is given, byte for byte. */
function send(port: number, probe: Probe): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: OutgoingHttpHeaders = { ...probe.headers };
    if (probe.body) headers['content-length'] = probe.body.length;
    // A connection per request: a kept-alive one that the server closes (after a 413) would fail the next.
    const req = httpRequest(
      { host: '127.0.0.1', port, method: probe.method, path: probe.path, headers, timeout: 5000, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${probe.method} ${probe.path} got no answer within 5 s`)));
    req.on('error', reject);
    req.end(probe.body ?? undefined);
  });
}

/** Header values node's client accepts: visible ASCII, space, tab and Latin-1. */
const headerValue = fc.string({
  unit: fc
    .oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff }), fc.constant(0x09))
    .map((code) => String.fromCharCode(code)),
  maxLength: 300,
});

const jsonText = (value: unknown) => JSON.stringify(value);

/** Bodies: valid and invalid requests of the sample's DTOs, any JSON, broken JSON, raw bytes, too large. */
const body: fc.Arbitrary<Buffer | null> = fc.oneof(
  fc.constant(null),
  fc
    .record(
      {
        data: fc.oneof(fc.string({ maxLength: 1100 }), fc.integer(), fc.constant(null), fc.array(fc.string())),
        delayMs: fc.oneof(fc.integer({ min: -10, max: 70_000 }), fc.string(), fc.double()),
        failTimes: fc.oneof(fc.integer({ min: -2, max: 12 }), fc.string()),
        extra: fc.jsonValue(),
      },
      { requiredKeys: [] },
    )
    .map((value) => Buffer.from(jsonText(value))),
  fc.jsonValue().map((value) => Buffer.from(jsonText(value) ?? '')),
  fc.string().map((text) => Buffer.from(text)),
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
  fc.constant(Buffer.from(`{"data":"${'x'.repeat(1024 * 1024 + 10)}"}`)),
  // Nesting around the default limit (64) and far past any stack, built as text.
  fc
    .tuple(
      fc.oneof(fc.integer({ min: 1, max: 80 }), fc.integer({ min: 900, max: 12_000 })),
      fc.constantFrom('[', '{"k":'),
    )
    .map(([depth, open]) =>
      Buffer.from(`{"data":"x","extra":${open.repeat(depth)}1${(open === '[' ? ']' : '}').repeat(depth)}}`),
    ),
  // __proto__ keys, plain or escaped, at the top or nested.
  fc
    .tuple(fc.constantFrom('"__proto__"', '"\\u005f_proto__"'), fc.boolean(), fc.jsonValue({ maxDepth: 2 }))
    .map(([key, nestedKey, value]) => {
      const member = `${key}:${JSON.stringify(value) ?? 'null'}`;
      return Buffer.from(nestedKey ? `{"data":"x","extra":[{${member}}]}` : `{"data":"x",${member}}`);
    }),
);

/** Bodies each endpoint accepts. */
const validBody: fc.Arbitrary<Buffer> = fc
  .oneof(
    fc.record(
      { data: fc.string({ minLength: 1, maxLength: 50 }), delayMs: fc.integer({ min: 0, max: 1000 }) },
      { requiredKeys: ['data'] },
    ),
    fc.record({ failTimes: fc.integer({ min: 0, max: 10 }) }),
    fc.constant({}),
  )
  .map((value) => Buffer.from(jsonText(value)));

function compressed(payload: Buffer, encoding: 'gzip' | 'deflate' | 'br'): Buffer {
  if (encoding === 'gzip') return gzipSync(payload);
  if (encoding === 'deflate') return deflateSync(payload);
  return brotliCompressSync(payload);
}

const contentType = fc.oneof(
  fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'APPLICATION/JSON',
    'application/problem+json',
    'application/jsonx',
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    '',
  ),
  headerValue,
);

const uuid = fc.uuid();

/** A path in any mix of upper and lower case, sometimes with a trailing slash. */
const anyCase = (path: string) =>
  fc
    .tuple(fc.array(fc.boolean(), { minLength: path.length, maxLength: path.length }), fc.boolean())
    .map(
      ([upper, slash]) =>
        [...path].map((char, i) => (upper[i] ? char.toUpperCase() : char)).join('') + (slash ? '/' : ''),
    );

/** Job ids: real ones (by index into the jobs created so far), UUIDs, upper case, and anything else. */
const jobPath = (known: () => string[]) =>
  fc
    .oneof(
      fc.nat().map((n) => known()[n % Math.max(1, known().length)] ?? '00000000-0000-4000-8000-000000000000'),
      uuid,
      uuid.map((id) => id.toUpperCase()),
      fc.string({ maxLength: 80 }).map((text) => encodeURIComponent(text)),
      fc.constantFrom('%00', '..', '%2e%2e', 'null', '%FF', '1'.repeat(300)),
    )
    .chain((id) =>
      fc.oneof(
        { arbitrary: fc.constant(`/jobs/${id}`), weight: 4 },
        anyCase('/jobs').map((jobs) => `${jobs.replace(/\/$/, '')}/${id}`),
      ),
    );

const query = fc.option(fc.dictionary(fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 }), { maxKeys: 3 }), {
  nil: undefined,
});

describe.each(PLATFORMS)('The sample under generated bad input (fast-check, %s)', (platform) => {
  let app: INestApplication | undefined;
  let port = 0;
  const created: string[] = [];

  beforeAll(async () => {
    app = await startSampleApp({ store: { type: 'memory' }, worker: { enabled: false } }, undefined, platform);
    port = (app.getHttpServer().address() as { port: number }).port;
  });

  afterAll(async () => {
    await app?.close();
  });

  it(`answers ${RUNS} generated requests without a 5xx, every error as problem+json, storing jobs only when it accepts one`, async () => {
    const store = app!.get(JobStore);
    const total = async () => Object.values((await store.stats(Date.now())).counts).reduce((sum, n) => sum + n, 0);
    const statuses = new Map<number, number>();

    const headersOf = (fields: {
      contentType?: string;
      contentEncoding?: string;
      idempotencyKey?: string;
      requestId?: string;
      extraHeader?: [string, string];
    }): Record<string, string> => {
      const headers: Record<string, string> = {};
      if (fields.contentType !== undefined) headers['content-type'] = fields.contentType;
      if (fields.contentEncoding !== undefined) headers['content-encoding'] = fields.contentEncoding;
      if (fields.idempotencyKey !== undefined) headers['idempotency-key'] = fields.idempotencyKey;
      if (fields.requestId !== undefined) headers['x-async-request-id'] = fields.requestId;
      if (fields.extraHeader) headers[fields.extraHeader[0]] = fields.extraHeader[1];
      return headers;
    };
    const optionalHeaders = {
      contentEncoding: fc.option(fc.constantFrom('gzip', 'identity', 'br', 'deflate', 'x-unknown'), { nil: undefined }),
      idempotencyKey: fc.option(fc.oneof(headerValue, fc.constantFrom('key-1', 'key-2')), { nil: undefined }),
      requestId: fc.option(fc.oneof(uuid, headerValue), { nil: undefined }),
      extraHeader: fc.option(
        fc.tuple(fc.constantFrom('x-api-key', 'authorization', 'accept', 'traceparent', 'x-custom'), headerValue),
        { nil: undefined },
      ),
    };

    // Submits: mostly JSON, often valid, sometimes compressed (for real or only said to be).
    const submit: fc.Arbitrary<Probe> = fc
      .record({
        path: fc.oneof(
          { arbitrary: fc.constantFrom(...ENDPOINTS), weight: 4 },
          fc.constantFrom(...ENDPOINTS).chain(anyCase),
        ),
        contentType: fc.option(fc.oneof(fc.constant('application/json'), contentType), { nil: undefined }),
        body: fc.oneof(validBody, body),
        compress: fc.constantFrom(undefined, 'gzip', 'deflate', 'br'),
        ...optionalHeaders,
      })
      .map(({ path, body: payload, compress, ...fields }) => {
        const encoded = payload && compress ? compressed(payload, compress) : payload;
        return {
          method: 'POST' as const,
          path,
          headers: headersOf({ ...fields, contentEncoding: compress ?? fields.contentEncoding }),
          body: encoded,
        };
      });
    // The status resource, with and without bodies.
    const status: fc.Arbitrary<Probe> = fc
      .record({
        method: fc.constantFrom('GET' as const, 'DELETE' as const, 'HEAD' as const),
        path: jobPath(() => created),
        contentType: fc.option(contentType, { nil: undefined }),
        body,
        ...optionalHeaders,
      })
      .map(({ method, path, body: payload, ...fields }) => ({
        method,
        path,
        headers: headersOf(fields),
        body: payload,
      }));
    // Anything: any method on any path.
    const anything: fc.Arbitrary<Probe> = fc
      .record({
        method: fc.constantFrom(...METHODS),
        path: fc.oneof(
          fc
            .tuple(fc.constantFrom(...ENDPOINTS, '/health', '/jobs', '/', '/api'), query)
            .map(([path, q]) => (q ? `${path}?${new URLSearchParams(q).toString()}` : path)),
          jobPath(() => created),
        ),
        contentType: fc.option(contentType, { nil: undefined }),
        body,
        ...optionalHeaders,
      })
      .map(({ method, path, body: payload, ...fields }) => ({
        method,
        path,
        headers: headersOf(fields),
        body: payload,
      }));
    const probe = fc.oneof(
      { arbitrary: submit, weight: 3 },
      { arbitrary: status, weight: 2 },
      { arbitrary: anything, weight: 1 },
    );

    await fc.assert(
      fc.asyncProperty(probe, async (request) => {
        const before = await total();
        const answer = await send(port, request);
        const after = await total();
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        const where = `${request.method} ${request.path} -> ${answer.status} ${answer.headers['content-type']} ${answer.text.slice(0, 300)}`;

        expect({ where, serverError: answer.status >= 500 }).toEqual({ where, serverError: false });
        const libraryRoute = routeOf(platform, request.method, request.path) !== null;
        if (answer.status >= 400 && libraryRoute && request.method !== 'HEAD') {
          expect({ where, type: answer.headers['content-type'] }).toEqual({
            where,
            type: expect.stringMatching(/^application\/problem\+json/),
          });
          const problem = JSON.parse(answer.text) as Record<string, unknown>;
          expect(problem).toMatchObject({
            type: expect.any(String),
            title: expect.any(String),
            status: answer.status,
            detail: expect.any(String),
          });
        }
        // Jobs are stored only by an accepted submit, one at a time.
        if (after !== before) {
          expect({
            where,
            accepted: answer.status === 202 && routeOf(platform, request.method, request.path) === 'submit',
            added: after - before,
          }).toEqual({
            where,
            accepted: true,
            added: 1,
          });
          created.push((JSON.parse(answer.text) as { id: string }).id);
        }
      }),
      { numRuns: RUNS },
    );
    // Every job a 202 created is still there, its payload a plain object that no input gave a prototype.
    for (const id of created) {
      const job = await store.getJob(id);
      const payload = job?.payload;
      const plain = typeof payload === 'object' && payload !== null && !Array.isArray(payload);
      expect({
        id,
        stored: job !== null,
        prototype: plain ? Object.getPrototypeOf(payload) === Object.prototype : true,
      }).toEqual({
        id,
        stored: true,
        prototype: true,
      });
    }

    console.log(
      `fault bad input (fast-check, ${platform}): requests ${RUNS}, answers ${[...statuses]
        .sort(([a], [b]) => a - b)
        .map(([s, n]) => `${s}: ${n}`)
        .join(', ')}, ` +
        `jobs stored ${created.length} (each by a 202; the other 202s were idempotent replays), 5xx 0`,
    );
  }, 120_000);

  it('accepts JSON bodies in gzip, deflate and br, and answers unknown or broken codings with problem+json', async () => {
    const payload = Buffer.from(JSON.stringify({ data: 'compressed' }));
    for (const encoding of ['gzip', 'deflate', 'br'] as const) {
      const answer = await send(port, {
        method: 'POST',
        path: '/api/process',
        headers: { 'content-type': 'application/json', 'content-encoding': encoding },
        body: compressed(payload, encoding),
      });
      expect({ encoding, status: answer.status }).toEqual({ encoding, status: 202 });
    }
    const broken = await send(port, {
      method: 'POST',
      path: '/api/process',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: payload,
    });
    expect(broken.status).toBe(400);
    expect(broken.headers['content-type']).toMatch(/^application\/problem\+json/);
    const unknown = await send(port, {
      method: 'POST',
      path: '/api/process',
      headers: { 'content-type': 'application/json', 'content-encoding': 'zstd' },
      body: payload,
    });
    expect(unknown.status).toBe(415);
    expect(unknown.headers['content-type']).toMatch(/^application\/problem\+json/);
  });
});

/**
 * Which library route a request reaches, if any: Express matches paths in any case and with a trailing
 * slash (its defaults), Fastify only as declared.
 */
function routeOf(platform: HttpPlatform, method: string, path: string): 'submit' | 'job' | null {
  let pathname = path.split('?')[0]!;
  if (platform === 'express') pathname = pathname.toLowerCase().replace(/(.)\/$/, '$1');
  if (method === 'POST' && ENDPOINTS.includes(pathname)) return 'submit';
  if ((method === 'GET' || method === 'DELETE' || method === 'HEAD') && /^\/jobs\/[^/]+$/.test(pathname)) return 'job';
  return null;
}
