// The jobs dashboard page (docs/dashboard.md). No framework, no build step: it polls the dashboard's
// JSON API every 2 s while the tab is visible and renders with DOM calls only (job data is never
// parsed as HTML).
const POLL_MS = 2000;
const STATUSES = ['Queued', 'Scheduled', 'InProgress', 'Completed', 'Failed', 'Canceled'];
const readOnly = document.body.dataset.readOnly === 'true';
const $ = (id) => document.getElementById(id);

const view = { status: 'Queued', name: '', owner: '', cursors: [null], nextCursor: null, openId: null };
let timer = null;
let polling = false;

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

/** Calls the dashboard API (relative to the page's base: the dashboard path). */
async function api(path, { method = 'GET', body } = {}) {
  const response = await fetch(path, {
    method,
    headers: body === undefined ? { Accept: 'application/json' } : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const answer = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, answer?.detail ?? `${response.status} ${response.statusText}`);
  return answer;
}

function element(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

function say(text, kind = 'info') {
  const message = $('message');
  message.textContent = text;
  message.dataset.kind = kind;
}

function age(iso) {
  return duration(Date.now() - Date.parse(iso));
}

function duration(ms) {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 90) return `${seconds} s`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min`;
  if (seconds < 36 * 3600) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} d`;
}

function setLive(state, text) {
  const live = $('live');
  live.dataset.state = state;
  live.textContent = text;
}

function renderStats(stats) {
  const head = $('status-counts').tHead.rows[0];
  const row = $('status-counts').tBodies[0].rows[0];
  head.replaceChildren(...STATUSES.map((status) => element('th', status, { scope: 'col' })));
  row.replaceChildren(...STATUSES.map((status) => element('td', stats.counts[status] ?? 0, { id: `count-${status}` })));
  const names = Object.entries(stats.names ?? {}).sort(([a], [b]) => a.localeCompare(b));
  // The table is rebuilt on every refresh: the focus stays on the same name's button.
  const focused = document.activeElement?.dataset?.nameFilter;
  $('name-counts').tBodies[0].replaceChildren(
    ...names.map(([name, counts]) => {
      const tr = element('tr', undefined, { 'data-name': name });
      const show = element('button', name, {
        type: 'button',
        title: `List the ${name} jobs`,
        'data-name-filter': name,
      });
      show.addEventListener('click', () => {
        $('name').value = name;
        $('filters').requestSubmit();
      });
      const nameCell = element('th', undefined, { scope: 'row' });
      nameCell.append(show);
      tr.append(
        nameCell,
        element('td', counts.waiting),
        element('td', counts.inProgress),
        element('td', counts.oldestWaitingAgeMs === null ? '–' : duration(counts.oldestWaitingAgeMs)),
        element('td', counts.workers),
      );
      return tr;
    }),
  );
  if (names.length === 0) {
    const tr = element('tr');
    tr.append(element('td', 'No live jobs, no workers registered.', { colspan: '5' }));
    $('name-counts').tBodies[0].append(tr);
  }
  if (focused !== undefined) {
    [...document.querySelectorAll('button[data-name-filter]')].find((b) => b.dataset.nameFilter === focused)?.focus();
  }
  $('names').replaceChildren(...names.map(([name]) => element('option', undefined, { value: name })));
}

function renderJobs(page) {
  const focused = document.activeElement?.dataset?.jobId;
  $('jobs').tBodies[0].replaceChildren(
    ...page.jobs.map((job) => {
      const open = element('button', job.id, { type: 'button', class: 'id-link', 'data-job-id': job.id });
      open.addEventListener('click', () => openJob(job.id));
      const tr = element('tr', undefined, { 'data-job-id': job.id });
      const idCell = element('td');
      idCell.append(open);
      tr.append(
        idCell,
        element('td', job.name),
        element('td', job.errorCode ? `${job.status} (${job.errorCode})` : job.status),
        element('td', `${job.attempts} of ${job.maxRetries + 1}`),
        element('td', age(job.createdAt)),
      );
      return tr;
    }),
  );
  if (page.jobs.length === 0) {
    const tr = element('tr');
    tr.append(element('td', `No ${view.status} jobs here.`, { colspan: '5' }));
    $('jobs').tBodies[0].append(tr);
  }
  if (focused) document.querySelector(`button[data-job-id="${focused}"]`)?.focus();
  view.nextCursor = page.nextCursor;
  $('next-page').disabled = page.nextCursor === null;
  $('first-page').disabled = view.cursors.length === 1;
  const filters = [view.name && `name ${view.name}`, view.owner && `owner ${view.owner}`].filter(Boolean).join(', ');
  $('jobs-caption').textContent =
    `${view.status} jobs${filters ? ` (${filters})` : ''}, newest first, page ${view.cursors.length}`;
}

function field(list, label, value) {
  list.append(element('dt', label));
  const dd = element('dd');
  if (value !== null && typeof value === 'object') dd.append(element('pre', JSON.stringify(value, null, 2)));
  else dd.textContent = value === null || value === undefined ? '–' : String(value);
  list.append(dd);
}

function renderDetail(job) {
  $('detail').hidden = false;
  $('detail-title').textContent = `Job ${job.id}`;
  const list = $('detail-fields');
  list.replaceChildren();
  field(list, 'Name', job.name);
  field(
    list,
    'Status',
    job.cancelRequested && job.status === 'InProgress' ? 'InProgress (cancel requested)' : job.status,
  );
  field(
    list,
    'Attempts',
    `${job.attempts} of ${job.maxRetries + 1} (retries ${job.retryCount}, recoveries ${job.recoveryCount})`,
  );
  field(list, 'Error', job.error ? `${job.error.code}: ${job.error.message}` : null);
  if (job.error?.stack) field(list, 'Stack', job.error.stack);
  field(list, 'Progress', job.progress);
  field(list, 'Owner', job.owner);
  field(list, 'Idempotency key', job.idempotencyKey);
  field(list, 'Worker', job.workerId);
  for (const [label, key] of [
    ['Created', 'createdAt'],
    ['Started', 'startedAt'],
    ['Finished', 'completedAt'],
    ['Last updated', 'lastUpdatedAt'],
    ['Retry due', 'retryDelayUntil'],
    ['Lease expires', 'leaseExpiresAt'],
  ]) {
    field(list, label, job[key]);
  }
  if ('payload' in job) {
    field(list, 'Payload', job.payload);
    field(list, 'Result', job.result);
    field(list, 'Headers', job.headers);
    field(list, 'Route parameters', job.routeParams);
    field(list, 'Query parameters', job.queryParams);
  } else {
    field(list, 'Payload and result', 'hidden (dashboard.hidePayloads)');
  }
  $('retry').disabled = readOnly || !(job.status === 'Failed' || job.status === 'Canceled');
  $('cancel').disabled = readOnly || !['Queued', 'Scheduled', 'InProgress'].includes(job.status) || job.cancelRequested;
}

async function loadStats() {
  renderStats(await api('api/stats'));
}

async function loadJobs() {
  const query = new URLSearchParams({ status: view.status, limit: '50' });
  if (view.name) query.set('name', view.name);
  if (view.owner) query.set('owner', view.owner);
  const cursor = view.cursors.at(-1);
  if (cursor) query.set('cursor', cursor);
  renderJobs(await api(`api/jobs?${query}`));
}

async function loadDetail() {
  if (view.openId === null) return;
  try {
    renderDetail(await api(`api/jobs/${view.openId}`));
  } catch (error) {
    if (error.status !== 404) throw error;
    $('detail').hidden = true;
    say(`Job ${view.openId} is gone: purged, or expired after its retention period.`);
    view.openId = null;
  }
}

async function openJob(id) {
  view.openId = id;
  try {
    await loadDetail();
    $('detail-title').focus();
  } catch (error) {
    say(`Could not read job ${id}: ${error.message}`, 'error');
  }
}

/** One refresh of everything shown; the next is scheduled only while the tab is visible. */
async function poll() {
  clearTimeout(timer);
  if (polling) return;
  polling = true;
  try {
    await Promise.all([loadStats(), loadJobs(), loadDetail()]);
    setLive('live', 'Live: refreshed every 2 s');
  } catch (error) {
    setLive('offline', `Not refreshing: ${error.message} (retrying)`);
  } finally {
    polling = false;
    if (document.visibilityState === 'visible') timer = setTimeout(poll, POLL_MS);
  }
}

async function act(question, action) {
  if (!window.confirm(question)) {
    say('Nothing was done.');
    return;
  }
  try {
    say(await action());
  } catch (error) {
    say(`Refused (${error.status ?? 'network'}): ${error.message}`, 'error');
  }
  await poll();
}

$('filters').addEventListener('submit', (event) => {
  event.preventDefault();
  view.status = $('status').value;
  view.name = $('name').value.trim();
  view.owner = $('owner').value.trim();
  view.cursors = [null];
  poll();
});
$('status').addEventListener('change', () => $('filters').requestSubmit());
$('next-page').addEventListener('click', () => {
  view.cursors.push(view.nextCursor);
  poll();
});
$('first-page').addEventListener('click', () => {
  view.cursors = [null];
  poll();
});
$('close-detail').addEventListener('click', () => {
  const id = view.openId;
  view.openId = null;
  $('detail').hidden = true;
  document.querySelector(`button[data-job-id="${id}"]`)?.focus();
});
$('retry').addEventListener('click', () =>
  act(`Retry job ${view.openId}? It is queued again with its whole attempt budget.`, async () => {
    const { job } = await api(`api/jobs/${view.openId}/retry`, { method: 'POST', body: {} });
    return `Job ${job.id} is queued again (${job.status}).`;
  }),
);
$('cancel').addEventListener('click', () =>
  act(`Cancel job ${view.openId}?`, async () => {
    const { outcome, job } = await api(`api/jobs/${view.openId}/cancel`, { method: 'POST', body: {} });
    return outcome === 'canceled'
      ? `Job ${job.id} is canceled.`
      : `Cancellation of job ${job.id} is requested: its worker stops it.`;
  }),
);
$('purge-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const status = $('purge-status').value;
  const ageChoice = $('purge-age').selectedOptions[0];
  const name = $('purge-name').value.trim();
  const what = `${status} jobs${name ? ` named ${name}` : ''} finished ${ageChoice.value === '0' ? 'at any time' : `more than ${ageChoice.text} ago`}`;
  act(`Purge ${what}? They are deleted for good.`, async () => {
    const body = { status, olderThanSeconds: Number(ageChoice.value), ...(name ? { name } : {}) };
    const { purged, more } = await api('api/purge', { method: 'POST', body });
    return `Purged ${purged} ${what}.${more ? ' More remain: press Purge again.' : ''}`;
  });
});
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') {
    poll();
  } else {
    clearTimeout(timer);
    setLive('paused', 'Paused while the tab is hidden');
  }
});

if (readOnly) {
  $('read-only').hidden = false;
  $('purge').disabled = true;
}
poll();
