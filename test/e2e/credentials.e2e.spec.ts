import { Controller, type INestApplication, Injectable, Param, Post } from '@nestjs/common';
import request from 'supertest';
import {
  AsyncEndpoint,
  AsyncHandler,
  JobStore,
  type AsyncContext,
  type AsyncEndpointHandler,
  type AsyncEndpointsModuleOptions,
} from '../../lib/index.js';
import { rawStoreContents } from '../support/raw-store.js';
import { waitFor } from '../support/sample-app.js';
import { startTestApp } from '../support/test-app.js';
import { PLATFORMS_AND_STORES } from '../support/test-platforms.js';
import { TestStores } from '../support/test-stores.js';

@Controller('tenants')
class EchoController {
  @Post(':tenant/echo')
  @AsyncEndpoint('Echo')
  submit(@Param('tenant') _tenant: string): void {}
}

/** Answers what the handler was given: the captured headers and query parameters. */
@AsyncHandler('Echo')
@Injectable()
class EchoHandler implements AsyncEndpointHandler {
  handle({ headers, queryParams }: AsyncContext) {
    return {
      headers: headers.toJSON(),
      queryParams,
      hasConstructor: headers.has('constructor'),
      hasToString: headers.has('toString'),
      proto: headers.get('__proto__') ?? null,
    };
  }
}

/** Credential-like headers the default must not store, each with a value to look for in the store. */
const CREDENTIAL_HEADERS = {
  'X-Auth-Token': 'auth-token-secret-1a2b',
  'X-Amz-Security-Token': 'amz-security-secret-3c4d',
  'X-Csrf-Token': 'csrf-secret-5e6f',
  'X-Forwarded-Client-Cert': 'client-cert-secret-7a8b',
  'X-Goog-Iap-Jwt-Assertion': 'iap-assertion-secret-9c0d',
};
const CREDENTIAL_QUERY = { access_token: 'access-token-secret-2f3e', api_key: 'api-key-secret-4d5c' };

describe.each(PLATFORMS_AND_STORES)('credentials in requests are not stored (%s, %s store)', (platform, kind) => {
  const stores = new TestStores(kind);
  const apps: INestApplication[] = [];

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(() => stores.dispose());

  /** Submits one job with every credential and two harmless values, runs it, and reads what it saw. */
  async function submitAndRun(options: AsyncEndpointsModuleOptions = {}) {
    const storeConfig = await stores.options();
    const app = await startTestApp(
      { store: storeConfig, ...options },
      { controllers: [EchoController], providers: [EchoHandler], platform },
    );
    apps.push(app);
    const http = () => request(app.getHttpServer());
    const submitted = await http()
      .post('/tenants/acme/echo')
      .query({ ...CREDENTIAL_QUERY, page: '2' })
      .set(CREDENTIAL_HEADERS)
      .set('X-Tenant', 'tenant-value-6b7a')
      .expect(202);
    const result = await waitFor(async () => {
      const { body } = await http().get(submitted.headers.location!).expect(200);
      return body.status === 'Completed' ? body.result : undefined;
    });
    const raw = await rawStoreContents(app, storeConfig);
    const stored = (await app.get(JobStore).getJob(submitted.body.id))!;
    return { result, raw, stored };
  }

  it('keeps credential-like headers and query parameters out of ctx and the raw store by default; ctx.headers holds only what was captured', async () => {
    const { result, raw, stored } = await submitAndRun();
    // Not prototype properties either.
    expect(result).toMatchObject({ hasConstructor: false, hasToString: false, proto: null });
    expect(result.headers).toMatchObject({ 'x-tenant': 'tenant-value-6b7a' });
    expect(result.queryParams).toEqual({ page: '2' });
    for (const name of Object.keys(CREDENTIAL_HEADERS)) expect(result.headers).not.toHaveProperty(name.toLowerCase());
    expect(stored.queryParams).toEqual({ page: '2' });
    expect(raw).toContain('tenant-value-6b7a');
    for (const value of [...Object.values(CREDENTIAL_HEADERS), ...Object.values(CREDENTIAL_QUERY)]) {
      expect(raw).not.toContain(value);
    }
  });

  it('stores a credential-like header or query parameter that an include list names', async () => {
    const { result, raw } = await submitAndRun({
      http: {
        captureHeaders: { include: ['x-auth-token', 'x-tenant'] },
        captureQueryParams: { include: ['API_KEY', 'page'] },
      },
    });
    expect(result.headers).toEqual({ 'x-auth-token': 'auth-token-secret-1a2b', 'x-tenant': 'tenant-value-6b7a' });
    expect(result.queryParams).toEqual({ api_key: 'api-key-secret-4d5c', page: '2' });
    expect(raw).toContain('api-key-secret-4d5c');
    expect(raw).not.toContain('access-token-secret-2f3e');
    expect(raw).not.toContain('csrf-secret-5e6f');
  });

  it('drops a query parameter that captureQueryParams.exclude names', async () => {
    const { result } = await submitAndRun({ http: { captureQueryParams: { exclude: ['Page'] } } });
    expect(result.queryParams).toEqual({});
  });
});
