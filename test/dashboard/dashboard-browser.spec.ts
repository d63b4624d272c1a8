import { Injectable, type INestApplication } from '@nestjs/common';
import { mkdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import {
  AsyncEndpointsService,
  AsyncHandler,
  JobStatus,
  JobStore,
  type AsyncEndpointHandler,
} from '../../lib/index.js';
import { startTestApp } from '../support/test-app.js';
import { seed } from './seed-jobs.js';

/** Debian's chromium (pretest and .ci/run install it); CHROMIUM_PATH points elsewhere. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Git-ignored: the screenshots the run keeps. */
const SCREENSHOTS = 'test-results/dashboard';

let releaseSlow: () => void = () => undefined;
let flakyFails = true;

@AsyncHandler('Quick')
@Injectable()
class QuickHandler implements AsyncEndpointHandler {
  async handle() {
    return { ok: true };
  }
}

@AsyncHandler('Slow')
@Injectable()
class SlowHandler implements AsyncEndpointHandler {
  handle() {
    return new Promise<{ ok: boolean }>((resolve) => (releaseSlow = () => resolve({ ok: true })));
  }
}

@AsyncHandler('Flaky', { maxRetries: 0 })
@Injectable()
class FlakyHandler implements AsyncEndpointHandler {
  async handle() {
    if (flakyFails) throw Object.assign(new Error('the flaky handler failed'), { code: 'FLAKY', expose: true });
    return { recovered: true };
  }
}

describe('Dashboard in headless Chromium', () => {
  let browser: Browser;
  const apps: INestApplication[] = [];
  /** What the browser refused under the dashboard's Content-Security-Policy: nothing, or the page breaks. */
  const refusedByPolicy: string[] = [];
  const pageFor = async (app: INestApplication): Promise<Page> => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
    page.setDefaultTimeout(8_000);
    page.on('console', (message) => {
      if (/Content.Security.Policy/i.test(message.text())) refusedByPolicy.push(message.text());
    });
    await page.goto(`${await app.getUrl()}/admin/jobs`.replace('[::1]', '127.0.0.1'));
    await page.getByRole('status').filter({ hasText: 'Live' }).waitFor();
    return page;
  };
  const count = (page: Page, status: string) => page.locator(`#count-${status}`);
  /** The job detail's value for a label. */
  const detailValue = (page: Page, label: string) => page.locator(`#detail-fields dt:text-is("${label}") + dd`);

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  afterEach(() => {
    expect(refusedByPolicy).toEqual([]);
  });
  afterAll(async () => {
    await browser?.close();
    for (const app of apps) await app.close();
  });

  it('shows counts change live, retries a Failed job to Completed and cancels a Queued one', async () => {
    const app = await startTestApp(
      { dashboard: { enabled: true } },
      { providers: [QuickHandler, SlowHandler, FlakyHandler] },
    );
    apps.push(app);
    const service = app.get(AsyncEndpointsService);
    const page = await pageFor(app);
    await expectText(count(page, 'Completed'), '0');

    await service.submit('Slow', {});
    await expectText(count(page, 'InProgress'), '1');
    for (let i = 0; i < 3; i++) await service.submit('Quick', { i });
    await expectText(count(page, 'Completed'), '3');
    releaseSlow();
    await expectText(count(page, 'Completed'), '4');
    await expectText(count(page, 'InProgress'), '0');

    const flaky = await service.submit('Flaky', { attempt: 'first' });
    await expectText(count(page, 'Failed'), '1');
    await page.getByLabel('Status', { exact: true }).selectOption('Failed');
    // The per-name table's name filters the list by it.
    await page.getByRole('button', { name: 'Flaky', exact: true }).click();
    await expectText(page.locator('#jobs caption'), 'Failed jobs (name Flaky)');
    expect(await page.getByLabel('Name', { exact: true }).inputValue()).toBe('Flaky');
    await page.getByRole('button', { name: flaky.id }).click();
    await expectText(detailValue(page, 'Error'), 'FLAKY: the flaky handler failed');
    await page.screenshot({ path: `${SCREENSHOTS}/dashboard-failed-job.png`, fullPage: true });
    flakyFails = false;
    page.once('dialog', (dialog) => dialog.accept());
    await page.getByRole('button', { name: 'Retry' }).click();
    await expectText(page.locator('#message'), `Job ${flaky.id} is queued again`);
    await expectText(detailValue(page, 'Status'), 'Completed');
    expect((await service.get(flaky.id))!.status).toBe(JobStatus.Completed);

    // No worker runs 'Unrouted': it stays Queued until canceled.
    const queued = await seed(app.get(JobStore), 'Unrouted', 'Queued');
    await page.getByLabel('Name', { exact: true }).fill('');
    await page.getByLabel('Status', { exact: true }).selectOption('Queued');
    await page.getByRole('button', { name: queued.id }).click();
    page.once('dialog', (dialog) => dialog.accept());
    await page.getByRole('button', { name: 'Cancel' }).click();
    await expectText(page.locator('#message'), `Job ${queued.id} is canceled.`);
    await expectText(detailValue(page, 'Status'), 'Canceled');
    expect((await app.get(JobStore).getJob(queued.id))!.status).toBe(JobStatus.Canceled);
    await page.screenshot({ path: `${SCREENSHOTS}/dashboard-canceled-job.png`, fullPage: true });
  });

  it('read-only: the page says so, its buttons are off, an action forced anyway is refused; a hidden tab pauses polling', async () => {
    const app = await startTestApp(
      { worker: { enabled: false }, dashboard: { enabled: true, readOnly: true } },
      { platform: 'fastify' },
    );
    apps.push(app);
    const failed = await seed(app.get(JobStore), 'Broken', 'Failed');
    const page = await pageFor(app);
    await page.getByText('Read-only: retry, cancel and purge are off').waitFor();
    await page.getByLabel('Status', { exact: true }).selectOption('Failed');
    await page.getByRole('button', { name: failed.id }).click();
    const retry = page.getByRole('button', { name: 'Retry' });
    expect(await retry.isDisabled()).toBe(true);
    expect(await page.getByRole('button', { name: 'Purge' }).isDisabled()).toBe(true);

    await retry.evaluate((button) => ((button as { disabled: boolean }).disabled = false));
    page.once('dialog', (dialog) => dialog.accept());
    await retry.click();
    await expectText(page.locator('#message'), 'Refused (403): The dashboard is read-only (dashboard.readOnly: true)');
    expect((await app.get(JobStore).getJob(failed.id))!.status).toBe(JobStatus.Failed);
    await page.screenshot({ path: `${SCREENSHOTS}/dashboard-read-only.png`, fullPage: true });

    // A hidden tab stops polling until it is shown again.
    await page.evaluate(`Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));`);
    await expectText(page.locator('#live'), 'Paused while the tab is hidden');
    const polledWhileHidden = await page.waitForRequest(/\/api\//, { timeout: 3000 }).then(
      () => true,
      () => false,
    );
    expect(polledWhileHidden).toBe(false);
    await page.evaluate(`Object.defineProperty(document, 'visibilityState', { value: 'visible', configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));`);
    await expectText(page.locator('#live'), 'Live');
  });
});

/** Waits (the page polls every 2 s) until the element's text contains `text`. */
async function expectText(locator: ReturnType<Page['locator']>, text: string): Promise<void> {
  await locator.filter({ hasText: text }).first().waitFor({ timeout: 10_000 });
}
