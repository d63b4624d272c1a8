import type { LoggerService } from '@nestjs/common';
import type { Job } from '../job/index.js';
import { libraryLogger } from '../observability/library-logger.js';

const logger = libraryLogger();

/**
 * Nest's Logger with every line tagged by job name and id, in the text and as the fields `jobId` and
 * `jobName` (JSON loggers print them as such); never payloads or headers. The library logger escapes
 * handler-supplied text (libraryLogger). One per attempt: it costs nothing until it writes a line.
 */
export class JobLogger implements LoggerService {
  private readonly logger = logger;

  constructor(private readonly job: Pick<Job, 'id' | 'name'>) {}

  private line(message: unknown): string {
    return `[${this.job.name} ${this.job.id}] ${String(message)}`;
  }

  private get fields(): { jobId: string; jobName: string } {
    return { jobId: this.job.id, jobName: this.job.name };
  }

  log(message: unknown, ...rest: unknown[]): void {
    this.logger.log(this.line(message), this.fields, ...rest);
  }

  error(message: unknown, ...rest: unknown[]): void {
    this.logger.error(this.line(message), this.fields, ...rest);
  }

  warn(message: unknown, ...rest: unknown[]): void {
    this.logger.warn(this.line(message), this.fields, ...rest);
  }

  debug(message: unknown, ...rest: unknown[]): void {
    this.logger.debug(this.line(message), this.fields, ...rest);
  }

  verbose(message: unknown, ...rest: unknown[]): void {
    this.logger.verbose(this.line(message), this.fields, ...rest);
  }
}
