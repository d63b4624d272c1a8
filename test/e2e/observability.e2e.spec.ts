import { Body, Controller, Injectable, type INestApplication, Post } from '@nestjs/common';
import { context, metrics, propagation, trace, SpanKind } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { MeterProvider, MetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import request from 'supertest';
import {
  AsyncEndpoint,
  AsyncEndpointsService,
  AsyncHandler,
  NonRetryableError,
  type AsyncContext,
  type AsyncEndpointHandler,
  type JobDocument,
} from '../../lib/index.js';
import { waitFor } from '../support/sample-app.js';
import { startTestApp } from '../support/test-app.js';
import { STORE_KINDS, TestStores } from '../support/test-stores.js';

class CollectingReader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}

  async metricsByName(): Promise<Map<string, MetricData>> {
    const { resourceMetrics } = await this.collect();
    const byName = new Map<string, MetricData>();
    for (const scope of resourceMetrics.scopeMetrics) {
      if (scope.scope.name !== 'AsyncEndpoints') continue;
      for (const metric of scope.metrics) byName.set(metric.descriptor.name, metric);
    }
    return byName;
  }
}

interface ObsRequest {
  mode: 'ok' | 'retry' | 'fail' | 'cancel';
}

@AsyncHandler('Obs', { maxRetries: 2, retryDelayBaseSeconds: 0.01 })
@Injectable()
class ObsHandler implements AsyncEndpointHandler<ObsRequest> {
  async handle({ request, job, signal }: AsyncContext<ObsRequest>) {
    // The handler's own spans belong to the attempt's trace.
    trace
      .getTracer('obs-handler')
      .startSpan('obs work', { attributes: { 'job.id': job.id } })
      .end();
    if (request.mode === 'retry' && job.attempt === 1) {
      throw Object.assign(new Error('first attempt fails'), { code: 'FLAKY' });
    }
    if (request.mode === 'fail') throw new NonRetryableError('never works', 'BAD');
    if (request.mode === 'cancel')
      await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    return { mode: request.mode };
  }
}

@Controller('obs')
class ObsController {
  @Post()
  @AsyncEndpoint('Obs')
  submit(@Body() _body: ObsRequest) {}

  /** No process of the test runs 'Ghost': its jobs wait. */
  @Post('ghost')
  @AsyncEndpoint('Ghost')
  ghost(@Body() _body: unknown) {}
}

/** Sum of a counter's points whose attributes include `attributes`. */
function sum(metric: MetricData | undefined, attributes: Record<string, unknown> = {}): number {
  if (!metric) return 0;
  return metric.dataPoints
    .filter((point) => Object.entries(attributes).every(([key, value]) => point.attributes[key] === value))
    .reduce((total, point) => total + (point.value as number), 0);
}

function histogramCount(metric: MetricData | undefined, attributes: Record<string, unknown> = {}): number {
  if (!metric) return 0;
  return metric.dataPoints
    .filter((point) => Object.entries(attributes).every(([key, value]) => point.attributes[key] === value))
    .reduce((total, point) => total + (point.value as { count: number }).count, 0);
}

describe.each(STORE_KINDS)('Metrics and traces (%s store)', (kind) => {
  const stores = new TestStores(kind);
  const reader = new CollectingReader();
  const exporter = new InMemorySpanExporter();
  const contextManager = new AsyncLocalStorageContextManager();
  let api: INestApplication;
  let worker: INestApplication;

  beforeAll(async () => {
    // The SDK goes in before the app boots, as the docs ask.
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
    trace.setGlobalTracerProvider(new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] }));
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    context.setGlobalContextManager(contextManager.enable());
    const store = await stores.options();
    if (kind === 'redis') {
      // Submit in an API-only app, run in a worker app: the trace context crosses Redis.
      api = await startTestApp(
        { store, worker: { enabled: false } },
        { controllers: [ObsController], providers: [ObsHandler] },
      );
      worker = await startTestApp({ store, http: { jobsPath: false } }, { providers: [ObsHandler] });
    } else {
      api = await startTestApp({ store }, { controllers: [ObsController], providers: [ObsHandler] });
      worker = api;
    }
  });

  afterAll(async () => {
    if (worker !== api) await worker?.close();
    await api?.close();
    await stores.dispose();
    metrics.disable();
    trace.disable();
    propagation.disable();
    context.disable();
  });

  it('records every instrument for a scripted run: success, retry then success, failure, cancel', async () => {
    const service = api.get(AsyncEndpointsService);
    const until = (id: string, statuses: string[]) =>
      waitFor<JobDocument>(async () => {
        const job = await service.get(id);
        return job && statuses.includes(job.status) ? job : undefined;
      });
    const parentTraceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parentSpanId = '00f067aa0ba902b7';
    const viaHttp = await request(api.getHttpServer())
      .post('/obs')
      .set('traceparent', `00-${parentTraceId}-${parentSpanId}-01`)
      .send({ mode: 'ok' })
      .expect(202);
    const retried = await service.submit('Obs', { mode: 'retry' });
    const failed = await service.submit('Obs', { mode: 'fail' });
    const canceled = await service.submit('Obs', { mode: 'cancel' });
    await until(canceled.id, ['InProgress']);
    await service.cancel(canceled.id);
    expect((await until(viaHttp.body.id, ['Completed'])).status).toBe('Completed');
    expect((await until(retried.id, ['Completed'])).retryCount).toBe(1);
    expect((await until(failed.id, ['Failed'])).error).toMatchObject({ code: 'BAD' });
    expect((await until(canceled.id, ['Canceled'])).status).toBe('Canceled');

    const collected = await reader.metricsByName();
    const job = { 'job.name': 'Obs', 'store.type': kind };
    expect(sum(collected.get('asyncendpoints.jobs.created'), job)).toBe(4);
    expect(sum(collected.get('asyncendpoints.jobs.completed'), job)).toBe(2);
    expect(sum(collected.get('asyncendpoints.jobs.retried'), { ...job, 'error.code': 'FLAKY' })).toBe(1);
    expect(sum(collected.get('asyncendpoints.jobs.failed'), { ...job, 'error.code': 'BAD' })).toBe(1);
    expect(sum(collected.get('asyncendpoints.jobs.canceled'), job)).toBe(1);
    expect(sum(collected.get('asyncendpoints.jobs.recovered'))).toBe(0);
    // First starts only: the retry's wait is its backoff, not queueing.
    expect(histogramCount(collected.get('asyncendpoints.jobs.queue.duration'), job)).toBe(4);
    expect(histogramCount(collected.get('asyncendpoints.jobs.processing.duration'), job)).toBe(5);
    expect(histogramCount(collected.get('asyncendpoints.jobs.processing.duration'), { 'job.outcome': 'threw' })).toBe(
      2,
    );
    expect(
      histogramCount(collected.get('asyncendpoints.jobs.processing.duration'), { 'job.outcome': 'canceled' }),
    ).toBe(1);
    const storeOps = collected.get('asyncendpoints.store.operation.duration');
    expect(histogramCount(storeOps, { 'store.operation': 'createJob', 'store.type': kind })).toBe(4);
    expect(histogramCount(storeOps, { 'store.operation': 'completeJob' })).toBe(2);
    expect(histogramCount(storeOps, { 'store.operation': 'failJob' })).toBe(3);
    expect(histogramCount(storeOps, { 'store.operation': 'claimDueJobs' })).toBeGreaterThanOrEqual(1);
    for (const gauge of [
      'asyncendpoints.jobs.waiting',
      'asyncendpoints.jobs.unhandled',
      'asyncendpoints.jobs.in_progress',
      'asyncendpoints.worker.utilization',
    ]) {
      expect(collected.get(gauge)?.dataPoints.length).toBeGreaterThan(0);
    }
    // Per name, and 0 once the name's jobs are done (its series does not stop).
    for (const gauge of ['asyncendpoints.jobs.waiting', 'asyncendpoints.jobs.unhandled']) {
      expect(collected.get(gauge)!.dataPoints.map((point) => [point.attributes, point.value])).toEqual([[job, 0]]);
    }

    const spans = exporter.getFinishedSpans();
    const submits = spans.filter((span) => span.name === 'submit Obs');
    const attempts = spans.filter((span) => span.name === 'process Obs');
    expect(submits).toHaveLength(4);
    expect(submits.every((span) => span.kind === SpanKind.PRODUCER)).toBe(true);
    expect(attempts).toHaveLength(5);
    expect(attempts.every((span) => span.kind === SpanKind.CONSUMER)).toBe(true);
    const submitOf = (id: string): ReadableSpan => submits.find((span) => span.attributes['job.id'] === id)!;
    for (const attempt of attempts) {
      const submit = submitOf(attempt.attributes['job.id'] as string);
      expect(attempt.links).toHaveLength(1);
      expect(attempt.links[0]!.context.spanId).toBe(submit.spanContext().spanId);
      expect(attempt.links[0]!.context.traceId).toBe(submit.spanContext().traceId);
    }
    const handlerSpans = spans.filter((span) => span.name === 'obs work');
    expect(handlerSpans).toHaveLength(5);
    for (const span of handlerSpans) {
      const attempt = attempts.filter((candidate) => candidate.attributes['job.id'] === span.attributes['job.id']);
      expect(attempt.map((candidate) => candidate.spanContext().spanId)).toContain(span.parentSpanContext?.spanId);
    }
    // The HTTP submit continues the caller's trace.
    const httpSubmit = submitOf(viaHttp.body.id);
    expect(httpSubmit.spanContext().traceId).toBe(parentTraceId);
    expect(httpSubmit.parentSpanContext?.spanId).toBe(parentSpanId);
    const failedAttempt = attempts.find((span) => span.attributes['job.id'] === failed.id)!;
    expect(failedAttempt.attributes['error.code']).toBe('BAD');
  });

  it('reports a name no worker runs: its waiting jobs as waiting and as unhandled, and how long the oldest has waited at the collection', async () => {
    const server = api.getHttpServer();
    const first = await request(server).post('/obs/ghost').send({}).expect(202);
    await request(server).post('/obs/ghost').send({}).expect(202);
    const ghost = { 'job.name': 'Ghost', 'store.type': kind };
    const pointOf = (metrics: Map<string, MetricData>, gauge: string) =>
      metrics.get(gauge)?.dataPoints.find((point) => point.attributes['job.name'] === 'Ghost')?.value as
        number | undefined;
    // The gauges read the store at most every 5 s: wait for a read that saw both jobs.
    let collectedAt = 0;
    const collected = await waitFor(
      async () => {
        collectedAt = Date.now();
        const metrics = await reader.metricsByName();
        return pointOf(metrics, 'asyncendpoints.jobs.waiting') === 2 ? metrics : undefined;
      },
      10_000,
      100,
    );
    const doneAt = Date.now();
    expect(pointOf(collected, 'asyncendpoints.jobs.unhandled')).toBe(2);
    // The age at the collection, not at the store read before it (the counts are read every 5 s).
    const age = pointOf(collected, 'asyncendpoints.jobs.oldest_waiting_age')!;
    const submittedAt = Date.parse(first.body.createdAt);
    expect(age).toBeGreaterThanOrEqual((collectedAt - submittedAt) / 1000);
    expect(age).toBeLessThanOrEqual((doneAt - submittedAt) / 1000);
    // The names that are run are not unhandled, and have no waiting job left.
    const obs = { 'job.name': 'Obs', 'store.type': kind };
    for (const gauge of ['asyncendpoints.jobs.unhandled', 'asyncendpoints.jobs.oldest_waiting_age']) {
      const points = [...collected.get(gauge)!.dataPoints].sort((a, b) =>
        String(a.attributes['job.name']).localeCompare(String(b.attributes['job.name'])),
      );
      expect(points.map((point) => [point.attributes, point.value])).toEqual([
        [ghost, gauge.endsWith('unhandled') ? 2 : age],
        [obs, 0],
      ]);
    }
  });
});
