export * from './job.js';
export * from './job-status.js';
export * from './job-error.js';
export * from './job-document.js';
export * from './backoff.js';
export * from './fingerprint.js';
