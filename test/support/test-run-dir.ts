import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A temporary directory for one `npm test` run, shared by its test files (the compiled processes of
 * node-processes.ts). jest.config.ts makes it before the first file (`globalSetup`, this file's
 * default export) and removes it after the last (`globalTeardown`, test-run-dir-teardown.ts, which
 * names the same variable); the test workers find it in their environment, which they inherit.
 */
export const RUN_DIR_VARIABLE = 'AE_TEST_RUN_DIR';

export default function makeRunDir(): void {
  process.env[RUN_DIR_VARIABLE] = mkdtempSync(join(tmpdir(), 'ae-test-run-'));
}
