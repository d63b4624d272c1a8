import type { LogLevel, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

/** An environment variable a test process needs; a missing one stops it with the variable's name. */
export function requiredEnv(app: string, name: string, fallback?: string): string {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${app}: set ${name}`);
  return value;
}

/**
 * Starts a test process's app: `api` listens on 127.0.0.1 (`PORT`, or a free one), `worker` only
 * initialises; then prints `READY {"port", "workerId", "pid"}`, which node-processes.ts waits for.
 */
export async function startTestProcess(
  module: Type,
  { role, instanceId, port, logger }: { role: string; instanceId: string; port: number; logger: LogLevel[] },
): Promise<void> {
  const app = await NestFactory.create(module, { logger });
  app.enableShutdownHooks();
  let listening: number | null = null;
  if (role === 'api') {
    await app.listen(port, '127.0.0.1');
    listening = (app.getHttpServer().address() as { port: number }).port;
  } else {
    await app.init();
  }
  process.stdout.write(`READY ${JSON.stringify({ port: listening, workerId: instanceId, pid: process.pid })}\n`);
}
