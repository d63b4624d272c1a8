import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { AsyncEndpointsModuleOptions } from './options/async-endpoints-options.js';

export const {
  ConfigurableModuleClass,
  MODULE_OPTIONS_TOKEN: RAW_OPTIONS_TOKEN,
  OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<AsyncEndpointsModuleOptions>({ moduleName: 'AsyncEndpoints' })
  .setClassMethodName('forRoot')
  // `isGlobal: undefined` (an unset variable, say) keeps the default rather than turning it off.
  .setExtras({ isGlobal: true }, (definition, extras) => ({ ...definition, global: extras.isGlobal ?? true }))
  .build();

/** Injection token of the resolved options (`ResolvedAsyncEndpointsOptions`). */
export const ASYNC_ENDPOINTS_OPTIONS = Symbol('ASYNC_ENDPOINTS_OPTIONS');

/**
 * Injection token of `(name) => boolean`: whether an `@AsyncEndpoint` of that name is declared (the
 * EndpointRegistry's answer, through a token because the registry's imports lead back to the service).
 */
export const DECLARED_ENDPOINT = Symbol('DECLARED_ENDPOINT');
