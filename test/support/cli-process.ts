import { spawn } from 'node:child_process';

/** One run of the operator CLI in its own `node` process. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Runs the compiled CLI (`lib/cli/main.js` of a CompiledProcesses) as users do; REDIS_URL and
 * REDIS_PASSWORD come only from `env`.
 */
export function runCliProcess(
  cliPath: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<CliRun> {
  const { REDIS_URL: _url, REDIS_PASSWORD: _password, ...inherited } = process.env;
  const started = Date.now();
  const child = spawn(process.execPath, [cliPath, ...args], {
    env: { ...inherited, NODE_OPTIONS: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started })),
  );
}
