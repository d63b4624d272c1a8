export * from './async-endpoints-options.js';
export * from './resolve-options.js';
