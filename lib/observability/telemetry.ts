import {
  context,
  isSpanContextValid,
  metrics,
  propagation,
  trace,
  SpanKind,
  SpanStatusCode,
  type Attributes,
  type Counter,
  type Histogram,
  type Link,
  type Meter,
  type ObservableGauge,
  type Span,
  type Tracer,
} from '@opentelemetry/api';

export const METER_NAME = 'AsyncEndpoints';
export const TRACER_NAME = 'AsyncEndpoints';
const MAX_CACHED_ATTRIBUTES = 1000;

/** What the observable gauges read at collection time. */
export interface GaugeSources {
  /**
   * From the store (cached by the caller): the in-progress count, and per job name its waiting jobs,
   * how long its longest-due job has waited and whether any worker is registered for it.
   */
  counts(): {
    inProgress: number;
    names: Record<string, { waiting: number; oldestWaitingAgeMs: number | null; workers: number }>;
  } | null;
  /** Busy slots / maximumConcurrency of this process's worker; null when workers are off. */
  utilization(): number | null;
}

/**
 * The library's instruments on `@opentelemetry/api`: no-ops until the app installs an SDK. The meter
 * is taken when the module starts, so install the SDK before bootstrapping Nest.
 */
export class Telemetry {
  private readonly meter: Meter;
  readonly jobsCreated: Counter;
  readonly jobsCompleted: Counter;
  readonly jobsFailed: Counter;
  readonly jobsRetried: Counter;
  readonly jobsRecovered: Counter;
  readonly jobsCanceled: Counter;
  readonly queueDuration: Histogram;
  readonly processingDuration: Histogram;
  readonly storeOperationDuration: Histogram;
  private readonly tracer: Tracer;
  /** Keyed by what they describe: store operations and job names. */
  private readonly attributeCache = new Map<string, Attributes>();
  private readonly gauges: [
    waiting: ObservableGauge,
    inProgress: ObservableGauge,
    utilization: ObservableGauge,
    unhandled: ObservableGauge,
    oldestWaitingAge: ObservableGauge,
  ];

  constructor(private readonly storeType: string) {
    this.meter = metrics.getMeter(METER_NAME);
    // The API's tracer delegates to whichever SDK is registered, also one registered later.
    this.tracer = trace.getTracer(TRACER_NAME);
    const counter = (name: string, description: string) =>
      this.meter.createCounter(`asyncendpoints.${name}`, { description, unit: '{job}' });
    this.jobsCreated = counter('jobs.created', 'Jobs stored by a submit');
    this.jobsCompleted = counter('jobs.completed', 'Jobs that reached Completed');
    this.jobsFailed = counter('jobs.failed', 'Jobs that reached Failed');
    this.jobsRetried = counter('jobs.retried', 'Failed attempts scheduled for a retry');
    this.jobsRecovered = counter('jobs.recovered', 'Jobs taken back from dead or hung workers');
    this.jobsCanceled = counter('jobs.canceled', 'Jobs that reached Canceled');
    const histogram = (name: string, description: string) =>
      this.meter.createHistogram(`asyncendpoints.${name}`, { description, unit: 's' });
    this.queueDuration = histogram('jobs.queue.duration', 'From submit (or retry due time) to handler start');
    this.processingDuration = histogram('jobs.processing.duration', 'One handler run');
    this.storeOperationDuration = histogram('store.operation.duration', 'One job store operation');

    const waiting = this.meter.createObservableGauge('asyncendpoints.jobs.waiting', {
      description: 'Jobs Queued or Scheduled, per job.name',
      unit: '{job}',
    });
    const unhandled = this.meter.createObservableGauge('asyncendpoints.jobs.unhandled', {
      description: 'Jobs Queued or Scheduled of a job.name that no live worker registers a handler for',
      unit: '{job}',
    });
    const oldestWaitingAge = this.meter.createObservableGauge('asyncendpoints.jobs.oldest_waiting_age', {
      description: 'How long the job of a job.name that has been due the longest has waited (0 when none is due)',
      unit: 's',
    });
    const inProgress = this.meter.createObservableGauge('asyncendpoints.jobs.in_progress', {
      description: 'Jobs InProgress across the deployment',
      unit: '{job}',
    });
    const utilization = this.meter.createObservableGauge('asyncendpoints.worker.utilization', {
      description: "Busy share of this process's worker slots",
      unit: '1',
    });
    this.gauges = [waiting, inProgress, utilization, unhandled, oldestWaitingAge];
  }

  /** Starts reporting the observable gauges from these sources. */
  observe(sources: GaugeSources): void {
    const [waiting, inProgress, utilization, unhandled, oldestWaitingAge] = this.gauges;
    this.meter.addBatchObservableCallback((result) => {
      const counts = sources.counts();
      if (counts) {
        result.observe(inProgress, counts.inProgress, this.attributes());
        for (const [name, stats] of Object.entries(counts.names)) {
          const attributes = this.jobAttributes(name);
          result.observe(waiting, stats.waiting, attributes);
          result.observe(unhandled, stats.workers === 0 ? stats.waiting : 0, attributes);
          result.observe(oldestWaitingAge, (stats.oldestWaitingAgeMs ?? 0) / 1000, attributes);
        }
      }
      const busy = sources.utilization();
      if (busy !== null) result.observe(utilization, busy, this.attributes());
    }, this.gauges);
  }

  attributes(extra: Attributes = {}): Attributes {
    return { 'store.type': this.storeType, ...extra };
  }

  /** Times a store call into `asyncendpoints.store.operation.duration`. */
  timeStore<T>(operation: string, call: () => Promise<T>): Promise<T> {
    const started = performance.now();
    const record = () =>
      this.storeOperationDuration.record((performance.now() - started) / 1000, this.operationAttributes(operation));
    let pending: Promise<T>;
    try {
      pending = call();
    } catch (error) {
      // A custom store may throw instead of rejecting: still a failed call, still timed.
      record();
      return Promise.reject(error as Error);
    }
    pending.then(record, record);
    return pending;
  }

  /** The attributes of one kind of job or store operation: built once, as they never change. */
  cachedAttributes(key: string, build: () => Attributes): Attributes {
    let attributes = this.attributeCache.get(key);
    if (!attributes) {
      attributes = build();
      // Job names come from code, but an app could make them up: the cache stays bounded.
      if (this.attributeCache.size < MAX_CACHED_ATTRIBUTES) this.attributeCache.set(key, attributes);
    }
    return attributes;
  }

  /** The attributes of every span and metric about jobs of one name. */
  jobAttributes(name: string): Attributes {
    return this.cachedAttributes(`job.name:${name}`, () => this.attributes({ 'job.name': name }));
  }

  private operationAttributes(operation: string): Attributes {
    return this.cachedAttributes(`store.operation:${operation}`, () =>
      this.attributes({ 'store.operation': operation }),
    );
  }

  /**
   * A PRODUCER span around a submit, child of the request's trace context (from `traceparent`
   * headers or the active context). Returns the span and the carrier to store with the job.
   */
  startSubmitSpan(name: string, headers: Record<string, unknown>): { span: Span; carrier: Record<string, string> } {
    const parent = propagation.extract(context.active(), headers);
    const span = this.tracer.startSpan(
      `submit ${name}`,
      { kind: SpanKind.PRODUCER, attributes: this.jobAttributes(name) },
      parent,
    );
    const carrier: Record<string, string> = {};
    // Without a tracing SDK and without a caller's trace, the span is an invalid no-op: there is no
    // trace to carry to the attempt, and no context to build for it.
    if (span.isRecording() || isSpanContextValid(span.spanContext())) {
      propagation.inject(trace.setSpan(parent, span), carrier);
    }
    return { span, carrier };
  }

  /** A CONSUMER span for one attempt, linked to the submit span stored with the job. */
  startAttemptSpan(
    job: { id: string; name: string; traceContext: Record<string, string> | null },
    attempt: number,
  ): Span {
    let links: Link[] | undefined;
    if (job.traceContext) {
      const submitted = trace.getSpanContext(propagation.extract(context.active(), job.traceContext));
      if (submitted) links = [{ context: submitted }];
    }
    // Samplers see the job's name; the attributes of this one attempt are only worked out for a span
    // that records (none without a tracing SDK: on the way from claim to handler, that saves ~10 µs).
    const span = this.tracer.startSpan(`process ${job.name}`, {
      kind: SpanKind.CONSUMER,
      links,
      attributes: this.jobAttributes(job.name),
    });
    if (span.isRecording()) span.setAttributes({ 'job.id': job.id, 'job.attempt': attempt });
    return span;
  }

  static endSpan(span: Span, error?: { code: string; message: string }): void {
    if (error) {
      span.setAttribute('error.code', error.code);
      span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
    }
    span.end();
  }
}
