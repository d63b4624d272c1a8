import { dashboardPage } from '../../lib/dashboard/dashboard-assets.js';
import { toDashboardDetail, toDashboardRow } from '../../lib/dashboard/dashboard-job.js';
import type { Job } from '../../lib/index.js';

const settings = { readOnly: false, hidePayloads: false };

describe('dashboard page', () => {
  it.each([
    ['/admin/jobs', './jobs/'],
    ['/api/admin/jobs/', './'],
    ['/ops/Jobs', './Jobs/'],
  ])('at %s, resolves its assets and API under the dashboard path (base %s)', (path, base) => {
    expect(dashboardPage(path, settings)).toContain(`<base href="${base}" />`);
  });

  it('escapes the path in the base attribute', () => {
    const page = dashboardPage('/admin/j"o<b>s', settings);
    expect(page).toContain('<base href="./j&#34;o&#60;b&#62;s/" />');
  });

  it('tells the script whether it is read-only', () => {
    expect(dashboardPage('/a', { readOnly: true, hidePayloads: false })).toContain('data-read-only="true"');
  });
});

describe('dashboard job views', () => {
  const job = (overrides: Partial<Job>): Job => ({
    id: '3f0c2a8e-5b7d-4c1e-9a2b-1d2e3f4a5b6c',
    name: 'Process',
    status: 'Queued',
    payload: { a: 1 },
    headers: { 'x-tenant': 't1' },
    routeParams: {},
    queryParams: {},
    owner: null,
    idempotencyKey: null,
    fingerprint: '',
    traceContext: null,
    retryCount: 0,
    maxRetries: 3,
    recoveryCount: 0,
    progress: null,
    result: null,
    error: null,
    createdAt: 0,
    startedAt: null,
    completedAt: null,
    lastUpdatedAt: 0,
    retryDelayUntil: null,
    cancelRequested: false,
    workerId: null,
    leaseExpiresAt: null,
    ...overrides,
  });

  it.each([
    ['a new Queued job', job({}), 0],
    ['a running first attempt', job({ status: 'InProgress', startedAt: 1 }), 1],
    ['a retry waiting after one failed attempt', job({ status: 'Scheduled', retryCount: 1, startedAt: 1 }), 1],
    ['a job taken back once and queued again', job({ recoveryCount: 1, startedAt: 1 }), 1],
    ['a job Failed after its fourth attempt', job({ status: 'Failed', retryCount: 3, startedAt: 1 }), 4],
    ['a job canceled while Queued', job({ status: 'Canceled' }), 0],
  ])('counts the attempts run of %s', (_, stored, attempts) => {
    expect(toDashboardRow(stored).attempts).toBe(attempts);
  });

  it("shows an error's type and stack only with exposeErrorDetails", () => {
    const failed = job({ status: 'Failed', error: { code: 'X', message: 'm', type: 'TypeError', stack: 'at x' } });
    expect(toDashboardDetail(failed, { hidePayloads: false, exposeErrorDetails: false }).error).toEqual({
      code: 'X',
      message: 'm',
    });
    expect(toDashboardDetail(failed, { hidePayloads: false, exposeErrorDetails: true }).error).toMatchObject({
      stack: 'at x',
    });
  });
});
