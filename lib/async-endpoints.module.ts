import { type DynamicModule, Module, type Type } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { DASHBOARD_CONTROLLER, dashboardControllerClass } from './dashboard/dashboard.controller.js';
import { DashboardGuards } from './dashboard/dashboard.guard.js';
import { TerminusModule } from '@nestjs/terminus';
import {
  ASYNC_ENDPOINTS_OPTIONS,
  DECLARED_ENDPOINT,
  ASYNC_OPTIONS_TYPE,
  ConfigurableModuleClass,
  OPTIONS_TYPE,
  RAW_OPTIONS_TOKEN,
} from './async-endpoints.module-definition.js';
import { AsyncEndpointsService } from './async-endpoints.service.js';
import { HandlerRegistry } from './handlers/handler-registry.js';
import { AsyncEndpointsHealthIndicator } from './health/async-endpoints.health.js';
import { EndpointRegistry } from './http/endpoint-registry.js';
import { UnhandledNames } from './health/unhandled-names.js';
import { HttpIntegration } from './http/http-integration.js';
import { JobLocations } from './http/job-locations.js';
import { JOBS_CONTROLLER, jobsControllerClass } from './http/jobs.controller.js';
import { loadOpenApiModule, OPENAPI_MODULE, OpenApiDocumentation } from './http/openapi.js';
import { ProblemDetailsFilter } from './http/problem-details.filter.js';
import { JobSubmitter } from './http/job-submitter.js';
import type { AsyncEndpointsModuleOptions } from './options/async-endpoints-options.js';
import { InstrumentedJobStore } from './observability/instrumented-job-store.js';
import { Telemetry } from './observability/telemetry.js';
import { createTelemetry, TelemetryGauges } from './observability/telemetry.providers.js';
import type { ResolvedAsyncEndpointsOptions } from './options/async-endpoints-options.js';
import { resolveOptions } from './options/resolve-options.js';
import { createJobStore } from './store/create-job-store.js';
import { JobStore } from './store/job-store.js';
import { StoreLifecycle } from './store/store-lifecycle.js';
import { JobWorker } from './worker/job-worker.js';
import { RecoverySweeper } from './worker/recovery-sweeper.js';
import { WorkerTimers } from './timers/worker-timers.js';

/**
 * `AsyncEndpointsModule.forRoot(options)` or `.forRootAsync({ imports, inject, useFactory })`.
 * Global by default (`isGlobal: false` to opt out). The app imports `ScheduleModule.forRoot()` once.
 */
@Module({})
export class AsyncEndpointsModule extends ConfigurableModuleClass {
  static forRoot(options: typeof OPTIONS_TYPE = {}): DynamicModule {
    // Options known now: `jobsPath: false` mounts no status controller at all, and a dashboard only when enabled.
    const jobsController = options?.http?.jobsPath === false ? null : jobsControllerClass();
    const dashboardController = options?.dashboard?.enabled === true ? dashboardControllerClass() : null;
    return withLibraryProviders(super.forRoot(options), jobsController, dashboardController);
  }

  static forRootAsync(options: typeof ASYNC_OPTIONS_TYPE): DynamicModule {
    return withLibraryProviders(super.forRootAsync(options), jobsControllerClass(), dashboardControllerClass());
  }
}

/** This module's own status and dashboard controller classes (mounted at boot), null for none. */
function withLibraryProviders(
  definition: DynamicModule,
  jobsController: Type<unknown> | null,
  dashboardController: Type<unknown> | null,
): DynamicModule {
  return {
    ...definition,
    imports: [...(definition.imports ?? []), DiscoveryModule, TerminusModule],
    controllers: [jobsController, dashboardController].filter((controller) => controller !== null),
    providers: [
      ...(definition.providers ?? []),
      { provide: JOBS_CONTROLLER, useValue: jobsController },
      { provide: DASHBOARD_CONTROLLER, useValue: dashboardController },
      DashboardGuards,
      {
        provide: ASYNC_ENDPOINTS_OPTIONS,
        useFactory: (raw: AsyncEndpointsModuleOptions) => resolveOptions(raw),
        inject: [RAW_OPTIONS_TOKEN],
      },
      { provide: Telemetry, useFactory: createTelemetry, inject: [ASYNC_ENDPOINTS_OPTIONS] },
      {
        provide: JobStore,
        useFactory: (options: ResolvedAsyncEndpointsOptions, telemetry: Telemetry) =>
          new InstrumentedJobStore(createJobStore(options), telemetry),
        inject: [ASYNC_ENDPOINTS_OPTIONS, Telemetry],
      },
      TelemetryGauges,
      StoreLifecycle,
      HandlerRegistry,
      EndpointRegistry,
      {
        provide: DECLARED_ENDPOINT,
        useFactory: (endpoints: EndpointRegistry) => (name: string) => endpoints.declares(name),
        inject: [EndpointRegistry],
      },
      AsyncEndpointsService,
      JobLocations,
      JobSubmitter,
      ProblemDetailsFilter,
      HttpIntegration,
      { provide: OPENAPI_MODULE, useFactory: loadOpenApiModule },
      OpenApiDocumentation,
      WorkerTimers,
      JobWorker,
      RecoverySweeper,
      UnhandledNames,
      AsyncEndpointsHealthIndicator,
    ],
    exports: [
      ASYNC_ENDPOINTS_OPTIONS,
      JobStore,
      AsyncEndpointsService,
      AsyncEndpointsHealthIndicator,
      JobSubmitter,
      ProblemDetailsFilter,
      JobLocations,
    ],
  };
}
