import { spawn } from 'node:child_process';
import { runCli } from '../../lib/cli/cli.js';

/** One run of the operator CLI. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Runs the compiled CLI (`lib/cli/main.js` of a CompiledProcesses) as users do; REDIS_URL,
 * REDIS_CLUSTER_NODES and REDIS_PASSWORD come only from `env`.
 */
export function runCliProcess(
  cliPath: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<CliRun> {
  const { REDIS_URL: _url, REDIS_CLUSTER_NODES: _nodes, REDIS_PASSWORD: _password, ...inherited } = process.env;
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

/**
 * Runs the CLI's entry point (runCli, which lib/cli/main.ts calls) in this process, its output as
 * main.ts prints it (a line per call): the command's exit code and output without starting `node`
 * for each run. REDIS_URL, REDIS_CLUSTER_NODES and REDIS_PASSWORD come only from `env`.
 */
export async function runCliInProcess(args: readonly string[], env: Record<string, string> = {}): Promise<CliRun> {
  let [stdout, stderr] = ['', ''];
  const started = Date.now();
  const code = await runCli(args, {
    stdout: (text) => (stdout += `${text}\n`),
    stderr: (text) => (stderr += `${text}\n`),
    env,
  });
  return { code, stdout, stderr, ms: Date.now() - started };
}
