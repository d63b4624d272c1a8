import { rmSync } from 'node:fs';

// jest.config.ts's globalTeardown: removes the run's directory that test-run-dir.ts made. Jest loads
// this file without the config's module mapping, so it imports nothing of the project.
export default function removeRunDir(): void {
  const runDir = process.env.AE_TEST_RUN_DIR;
  if (runDir) rmSync(runDir, { recursive: true, force: true });
}
