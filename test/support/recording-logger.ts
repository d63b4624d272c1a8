import type { StoreLogger } from '../../lib/store/redis/redis-job-store.js';

export type LogLevel = 'log' | 'warn' | 'error';

/** A logger that keeps what it is told, for tests to check (and to keep test output quiet). */
export class RecordingLogger implements StoreLogger {
  readonly entries: { level: LogLevel; message: string }[] = [];

  log(message: unknown): void {
    this.entries.push({ level: 'log', message: String(message) });
  }

  warn(message: unknown): void {
    this.entries.push({ level: 'warn', message: String(message) });
  }

  error(message: unknown): void {
    this.entries.push({ level: 'error', message: String(message) });
  }

  messages(level: LogLevel): string[] {
    return this.entries.filter((entry) => entry.level === level).map((entry) => entry.message);
  }
}
