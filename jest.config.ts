import type { Config } from 'jest';

const config: Config = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    // The docs' test examples import the package by name, as users do.
    '^nestjs-async-endpoints$': '<rootDir>/lib/index.ts',
    '^nestjs-async-endpoints/testing$': '<rootDir>/lib/testing/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, isolatedModules: true, tsconfig: 'tsconfig.json' }],
  },
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  testTimeout: 30_000,
  globalSetup: '<rootDir>/test/support/test-run-dir.ts',
  globalTeardown: '<rootDir>/test/support/test-run-dir-teardown.ts',
  testSequencer: '<rootDir>/test/support/slow-first-sequencer.mjs',
  maxWorkers: 2,
};

export default config;
